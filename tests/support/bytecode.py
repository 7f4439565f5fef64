"""Bytecode for the platform's venv and workspace, as the agent image has it.

The image's `uv sync` runs with UV_COMPILE_BYTECODE=1. A plain `uv sync` compiles nothing, and
with PYTHONDONTWRITEBYTECODE set (as in CI's shell here) Python then compiles every module from
source at every start: `import prefect` 4.9 s instead of 2.1 s. A benchmark that compares
processes of this venv with processes of a synced env (compiled by the sync) would measure that,
not the strategies. compileall skips what is already up to date, so a second call is quick.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE_SOURCES = ("contracts/src", "sync/src", "agent_image/src", "api/src", "stack/src")


def compile_platform() -> None:
    # Not checked: a few packages ship modules for newer Pythons (whenever's _typing_312.py)
    # that cannot compile here and are never imported; uv's own --compile-bytecode skips them too.
    folders = [sysconfig.get_paths()["purelib"]]
    folders += [str(ROOT / folder) for folder in WORKSPACE_SOURCES if (ROOT / folder).is_dir()]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *folders],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
