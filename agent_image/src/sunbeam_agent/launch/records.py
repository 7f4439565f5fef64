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
        run_labels.PHASE: run_labels.SYNCED,
    }


def building_labels(ref: str, commit: str, env_key: str) -> dict[str, str]:
    """Labels a run gets when its env starts building: `GET /runs/{id}` says so meanwhile."""
    return {
        run_labels.PHASE: run_labels.BUILDING,
        run_labels.REF: ref,
        run_labels.COMMIT: commit,
        run_labels.ENV_KEY: env_key,
    }


def pin_note(ref: str, commit: str, pinned_by: str | None, rerun_of: str | None) -> str:
    """Why the run runs `commit` and not `ref`'s latest one, and how to get the latest."""
    why = {
        "retry": "the commit this run first ran (a retry repeats it)",
        "rerun": f"the commit run {rerun_of} ran (an exact rerun)",
        "tag": f"pinned by the run's tag sunbeam-commit:{commit[:8]}",
    }.get(pinned_by or "", "pinned")
    return (
        f"runs {ref} at commit {commit[:12]}, {why}: for {ref}'s latest commit, start a new "
        "run without a sunbeam-commit tag"
    )


def env_note(env_key: str, previous: str | None) -> str | None:
    """How this run's env compares with the one its earlier attempt (or original) used."""
    if not previous:
        return None
    if previous == env_key:
        return f"Same env as the original run: {env_key[:12]} (same lock, same Python)"
    return (
        f"The original run used env {previous[:12]}; this one has {env_key[:12]}: same lock, "
        "another Python or platform on this agent"
    )


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
