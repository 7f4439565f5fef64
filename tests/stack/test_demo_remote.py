"""The demo's scratch remote always has the `main` it runs, even from a clone of another branch."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sunbeam_stack.demo.run import scratch_remote


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_checkout_without_main_gives_the_demo_a_main(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    _git("init", "-q", "-b", "feature", cwd=checkout)
    _git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@x",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
        cwd=checkout,
    )
    bare = scratch_remote(checkout, tmp_path / "scratch")
    assert _git("rev-parse", "main", cwd=bare) == _git("rev-parse", "HEAD", cwd=checkout)
