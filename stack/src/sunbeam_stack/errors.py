"""The stack's one error base: what `sunbeam` says when the local stack cannot do what was asked."""

from __future__ import annotations


class StackError(Exception):
    """The local stack cannot start or keep running; the message is for the user."""
