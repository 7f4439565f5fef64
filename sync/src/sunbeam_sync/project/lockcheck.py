"""Is uv.lock current with pyproject.toml? Asked of uv once per content of the two, per cache.

A branch that adds a dependency to pyproject.toml but forgets `uv lock` keeps main's lock bytes,
so its env key is main's and its run is a cache hit: without this check it would run in main's
env and fail on the import. `uv lock --check` costs 0.15 s; its verdict depends only on the
files' content, so a pass is remembered in the cache's state folder and every later run of the
same content (every code-only commit) skips it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from sunbeam_sync.cache.files import atomic_write
from sunbeam_sync.cache.layout import CacheLayout
from sunbeam_sync.errors import LockfileError, StaleLockError
from sunbeam_sync.project.lockfile import stale_detail
from sunbeam_sync.run.uv import Uv

# What `uv lock --check` reads besides uv.lock: the project's metadata and uv's own settings.
_INPUTS = ("pyproject.toml", "uv.lock", "uv.toml")


def lock_digest(files: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b"-"
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def check_lock_once(
    uv: Uv, layout: CacheLayout, project: Path, python: str, inputs: Sequence[Path] = ()
) -> None:
    """LockfileError when uv.lock is stale or unparsable; a pass is remembered.

    `inputs`: every file the verdict depends on (a workspace: the root's lock and settings and
    every member's pyproject.toml, `Lockfile.check_inputs`); by default the project's own.
    """
    marker = layout.lock_checked(lock_digest(inputs or [project / name for name in _INPUTS]))
    if marker.exists():
        return
    try:
        confirmed = uv.check_lock(project, python)
    except StaleLockError:
        raise LockfileError(stale_lock_message(project)) from None
    if confirmed:
        atomic_write(marker, "")


def stale_lock_message(project: Path) -> str:
    """Which lock is stale (a workspace member's is the workspace root's), what differs, the fix."""
    lock_dir = next((p for p in (project, *project.parents) if (p / "uv.lock").exists()), project)
    where = (
        f"the workspace's uv.lock (above member {os.path.relpath(project, lock_dir)})"
        if lock_dir != project
        else f"uv.lock in {project.name or '.'}"
    )
    return (
        f"{where} is out of date with pyproject.toml{stale_detail(project)}: "
        "run `uv lock` and commit uv.lock"
    )
