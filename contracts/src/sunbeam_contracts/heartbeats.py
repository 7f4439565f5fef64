"""Run heartbeats: how a run whose infrastructure died (SIGKILL, out of memory, `docker kill`, a
node gone) ends Crashed instead of Running or Pending forever.

`sunbeam-run` (under every pool type) starts a small heartbeat process beside the run: from the
first second of the sync until the flow's process exits, it sends the event HEARTBEAT_EVENT for
the flow run every `SUNBEAM_HEARTBEAT_SECONDS`, naming the run's work pool as a related resource.
Each Sunbeam pool has one Prefect automation (made by `sunbeam pool create` and by the `sunbeam`
worker): after a heartbeat, expect another one (or a state that ends the run's process) within
`SUNBEAM_CRASH_AFTER_SECONDS`, else set the run Crashed. Prefect evaluates such proactive
triggers every 5 s, so a run whose infrastructure dies ends Crashed at most
CRASH_AFTER_SECONDS + EVALUATION_SLACK_SECONDS after it died.

Not Prefect's own `prefect.flow-run.heartbeat`: the engine sends that one at most every 30 s,
only once the flow started (not while the env syncs) and as the ref's locked Prefect decides.
"""

from __future__ import annotations

from collections.abc import Mapping

HEARTBEAT_EVENT = "sunbeam.flow-run.heartbeat"

HEARTBEAT_SECONDS_ENV = "SUNBEAM_HEARTBEAT_SECONDS"
CRASH_AFTER_SECONDS_ENV = "SUNBEAM_CRASH_AFTER_SECONDS"
HEARTBEAT_SECONDS = 20.0
# Four heartbeats per window: three lost in a row (a busy server) are no crash.
CRASH_AFTER_SECONDS = 90.0
# Prefect evaluates proactive triggers every 5 s; the action is one more round trip.
EVALUATION_SLACK_SECONDS = 10.0

# The run's states whose event ends the wait for the next heartbeat: its process ended on purpose
# (final states), gave the run back to be picked up again, or paused it.
ENDING_STATES = (
    "Completed",
    "Failed",
    "Cancelled",
    "Crashed",
    "Scheduled",
    "Paused",
    "Suspended",
)


def seconds_setting(environ: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds from the environment (`default` when unset or empty);
    ValueError names the variable and the fix, in one line."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(
            f"{name}={text[:40]!r} is not a number of seconds: set a positive number, "
            f"or unset it for the default ({default:g})"
        )
    return value


def automation_name(pool: str) -> str:
    """The one automation that crashes the runs of work pool `pool` whose heartbeats stopped."""
    return f"sunbeam: crash runs without heartbeat in pool {pool}"
