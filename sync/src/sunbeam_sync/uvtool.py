"""The uv executable the platform pins, and the environment uv runs with."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from sunbeam_sync.credential_free import without_credentials
from sunbeam_sync.errors import UvError


@functools.cache
def uv_bin() -> str:
    try:
        from uv import find_uv_bin  # the pinned `uv` distribution ships the binary

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise UvError("uv is not installed: install the platform with `uv sync`") from None
        return found


@functools.cache
def uv_version() -> str:
    out = subprocess.run(
        [uv_bin(), "--version"],
        capture_output=True,
        text=True,
        check=False,
        env=without_credentials(),
    )
    return out.stdout.strip().removeprefix("uv ").split(" ")[0] or "unknown"


def uv_environment(uv_cache: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # The caller's own venv or project settings must never leak into the env we build.
        if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PROJECT", "PYTHONHOME"}
        and not k.startswith("SUNBEAM_GIT_")
    }
    env.setdefault("UV_CACHE_DIR", str(uv_cache))
    env.update(UV_NO_PROGRESS="1", UV_PYTHON_DOWNLOADS=env.get("UV_PYTHON_DOWNLOADS", "never"))
    env.update(extra)
    return env
