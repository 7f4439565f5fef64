"""What the agent records on a flow run so the dashboard and the API can show its provenance.

The label names and value formats are a contract with the API (docs/contracts.md).
"""

from __future__ import annotations

import json

from sunbeam_contracts import run_labels
from sunbeam_sync import PrepareResult


def timings(result: PrepareResult) -> dict[str, float]:
    raw = result.timings
    items = raw.model_dump() if hasattr(raw, "model_dump") else dict(raw)
    return {phase: round(float(sec), 3) for phase, sec in items.items() if sec is not None}


def sync_labels(result: PrepareResult, sync_seconds: float) -> dict[str, str]:
    """Flow-run labels (all string values) describing the code and env a run used."""
    return {
        run_labels.REF: result.ref,
        run_labels.COMMIT: result.commit,
        run_labels.ENV_KEY: result.env_key,
        run_labels.CACHE_HIT: run_labels.flag(result.cache_hit),
        run_labels.BUILT: run_labels.flag(result.built),
        run_labels.HEALED: run_labels.flag(result.healed),
        run_labels.SYNC_SECONDS: f"{sync_seconds:.3f}",
        run_labels.TIMINGS: json.dumps(timings(result), sort_keys=True),
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
