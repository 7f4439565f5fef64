"""Start `sunbeam-sync prepare` as its own process (for tests that kill or race it)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

SUNBEAM_SYNC = str(Path(sys.executable).with_name("sunbeam-sync"))


def start_prepare(
    repo: str,
    cache: Path,
    *args: str,
    ref: str = "main",
    env: dict[str, str] | None = None,
    capture: bool = True,
) -> subprocess.Popen[str]:
    """`sunbeam-sync prepare REPO --ref REF --cache-dir CACHE ARGS`, in its own process group."""
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [SUNBEAM_SYNC, "prepare", repo, "--ref", ref, "--cache-dir", str(cache), *args],
        stdout=out,
        stderr=out,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `condition` until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)
