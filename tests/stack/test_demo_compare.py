"""`sunbeam demo` compares like with like: a new lock's env against the original's image rebuild."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement

from sunbeam_stack.demo.baseline import Baseline, compare
from sunbeam_stack.demo.run import new_lock_requirement

BASELINE = Baseline(24.0, 3, "2026-12-01T00:00:00Z", Path("benchmarks/results/x.json"))


def test_a_cache_hit_is_not_compared_with_the_image_rebuild() -> None:
    line = compare(3.0, BASELINE, new_env=False)
    assert "not compared" in line and "cache hit" in line and "x this run" not in line


def test_a_new_env_is_compared_and_said_to_be_one() -> None:
    line = compare(4.0, BASELINE, new_env=True)
    assert "6.0x this run" in line and "new env" in line


def test_the_demo_requirement_is_a_new_lock_that_any_release_satisfies() -> None:
    first, second = new_lock_requirement("tabulate"), new_lock_requirement("tabulate")
    assert first != second  # a new lock (new bytes, new env key) at every demo
    for text in (first, second):
        requirement = Requirement(text)
        assert requirement.name == "tabulate"
        assert all(requirement.specifier.contains(v) for v in ("0.9.0", "0.10.0", "1.0"))
