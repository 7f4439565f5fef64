"""What the same dependency change costs the original way: the per-branch image rebuild measured
by `benchmarks/bench_dependency_change.py`, read from its saved result."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

RESULT = Path("benchmarks") / "results" / "dependency_change.json"


@dataclass(frozen=True)
class Baseline:
    seconds_to_flow_running: float  # median over the benchmark's runs
    runs: int
    measured: str  # when the benchmark ran (UTC)
    source: Path


def read_baseline(checkout: Path) -> Baseline | None:
    """The saved original-way measurement, or None when the checkout has none (or it is unreadable)."""
    path = checkout / RESULT
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        seconds = [float(r["seconds_to_flow_running"]) for r in data["runs"]["original"]]
        when = str(data.get("when", "?"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not seconds:
        return None
    return Baseline(statistics.median(seconds), len(seconds), when, RESULT)


def compare(ours_seconds: float, baseline: Baseline | None, new_env: bool = True) -> str:
    """The headline's second line: the original way's cost next to ours, like with like.

    The original's figure is an image build for a lock it had never installed; a run whose env
    was already in the cache is not compared with it, and the line says so."""
    if not new_env:
        return (
            "the original way (rebuild the image per branch) is not compared: this branch's env "
            "was already built in this cache (a lock seen before), so this run was a cache hit, "
            "not a new lock"
        )
    if baseline is None:
        return (
            "the original way (rebuild the image per branch): no saved measurement; run "
            "benchmarks/bench_dependency_change.py to get one"
        )
    ratio = baseline.seconds_to_flow_running / ours_seconds if ours_seconds > 0 else float("inf")
    return (
        f"the original way (rebuild the image per branch) took {baseline.seconds_to_flow_running:.1f}s "
        f"from push to flow running (median of {baseline.runs}, {baseline.source}, measured "
        f"{baseline.measured}): {ratio:.1f}x this run (a new env built from a lock new here)"
    )
