"""The agent's one error base: every failure the agent reports to a person is an AgentError.

Each subclass lives beside the code that raises it; its message is one line that names the cause
and the fix. Standard library only: `sunbeam-run` imports it on every run.
"""

from __future__ import annotations


class AgentError(Exception):
    """A failure of the agent or the launcher, said in one line for the person who reads it."""
