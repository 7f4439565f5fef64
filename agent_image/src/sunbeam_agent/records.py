"""What the agent records on a flow run so the dashboard and the API can show its provenance.

The label names and value formats are a contract with the API (docs/contracts.md).
"""

from __future__ import annotations

import json

from sunbeam_contracts import labels as label
from sunbeam_sync import PrepareResult


def timings(result: PrepareResult) -> dict[str, float]:
    raw = result.timings
    items = raw.model_dump() if hasattr(raw, "model_dump") else dict(raw)
    return {phase: round(float(sec), 3) for phase, sec in items.items() if sec is not None}


def sync_labels(result: PrepareResult, sync_seconds: float) -> dict[str, str]:
    """Flow-run labels (all string values) describing the code and env a run used."""
    return {
        label.REF: result.ref,
        label.COMMIT: result.commit,
        label.ENV_KEY: result.env_key,
        label.CACHE_HIT: label.flag(result.cache_hit),
        label.BUILT: label.flag(result.built),
        label.HEALED: label.flag(result.healed),
        label.SYNC_SECONDS: f"{sync_seconds:.3f}",
        label.TIMINGS: json.dumps(timings(result), sort_keys=True),
    }


def sync_summary(result: PrepareResult, sync_seconds: float) -> str:
    """One line for the run log: which code, which env, and how it got there."""
    if result.healed:
        how = f"healed ({result.heal_reason})"
    elif result.built:
        how = "built"
    else:
        how = "cache hit"
    phases = ", ".join(f"{k} {float(v):.2f}s" for k, v in timings(result).items())
    return (
        f"Synced {result.ref} @ {result.commit[:12]}: env {result.env_key} {how} "
        f"in {sync_seconds:.2f}s ({phases})"
    )
