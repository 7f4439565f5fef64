"""Flow-run labels: the agent records them (all string values), the API and the tools read them."""

from __future__ import annotations

REF = "sunbeam.ref"
COMMIT = "sunbeam.commit"  # set before the run starts, it pins the run to that commit
ENV_KEY = "sunbeam.env_key"
CACHE_HIT = "sunbeam.cache_hit"  # "true" / "false"
BUILT = "sunbeam.built"  # "true" / "false"
HEALED = "sunbeam.healed"  # "true" / "false"
SYNC_SECONDS = "sunbeam.sync_seconds"  # a decimal number of seconds
TIMINGS = "sunbeam.timings"  # a JSON object: phase -> seconds
PHASE = "sunbeam.phase"  # "syncing", "building" while its env is built, "synced" once done
SYNCING = "syncing"
BUILDING = "building"
SYNCED = "synced"
RERUN_OF = "sunbeam.rerun_of"  # on a rerun: the id of the run it repeats (same commit, same lock)
PUSHED_REF = "sunbeam.pushed_ref"  # on prewarm runs: the branch the webhook saw pushed
PREWARM_HOST = "sunbeam.prewarm_host"  # on per-host prewarm runs: the host id they are for

PREFIX = "sunbeam."
TRUE = "true"
FALSE = "false"


def flag(value: bool) -> str:
    """A boolean as the label value the contract uses."""
    return TRUE if value else FALSE
