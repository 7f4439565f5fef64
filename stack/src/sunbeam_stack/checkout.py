"""The git checkout `sunbeam` runs in: the default pipeline repository and state folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sunbeam_stack.errors import StackError


def find_checkout(cwd: Path | None = None) -> Path | None:
    """The top of the git checkout containing `cwd` (default: the current directory), or None."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def checkout_root() -> Path:
    root = find_checkout()
    if root is None:
        raise StackError("not inside a git checkout: run `sunbeam` in the Sunbeam repository")
    return root


def default_state_dir(root: Path, demo: bool = False) -> Path:
    """`.sunbeam/` for `up` and `env`; the demo keeps to `.sunbeam/demo/`, away from the user's data."""
    state = root / ".sunbeam"
    return state / "demo" if demo else state
