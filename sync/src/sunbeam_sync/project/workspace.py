"""uv workspaces: which uv.lock a project folder uses, and which local packages its flows import.

A workspace has one uv.lock, at its root; a member's folder has none. A project folder without
a lock of its own is looked up the way uv does it: the nearest folder above (inside the checkout)
with a uv.lock that lists the folder as one of its packages.

Local packages (workspace members, path dependencies) are never installed into the env: the env
is shared by every commit with the same lock, and their code changes with every commit. uv would
install them editable, i.e. import them from their folders; the flow does the same through its
path (`local_paths`, each package's `src/` if it has one, else its folder, in this commit's
checkout), and the env holds their third-party dependencies (`uv sync --no-install-local`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sunbeam_sync.errors import LockfileError

LOCAL_SOURCES = ("editable", "virtual", "directory")  # folders (`path` is an archive)


def lock_folder(root: Path, project: Path, where: str, relock: str) -> Path:
    """The folder whose uv.lock `project` uses: its own, else the nearest one above in `root`."""
    for folder in (project, *project.parents):
        if not folder.is_relative_to(root):
            break
        if (folder / "uv.lock").is_file() or (folder / "uv.lock").is_symlink():
            return folder
    raise LockfileError(f"no uv.lock in {where} nor in a workspace above it: {relock} there")


def local_path(package: dict[str, Any]) -> str | None:
    """The folder of a package built from the repository (relative to the lock), or None."""
    source = package.get("source") or {}
    for kind in LOCAL_SOURCES:
        if isinstance(path := source.get(kind), str):
            return os.path.normpath(path)
    return None


def member_name(packages: list[dict[str, Any]], folder: Path, project: Path) -> str | None:
    """The canonical name of the lock's package that lives in `project`, if any."""
    rel = os.path.normpath(os.path.relpath(project, folder))
    for package in packages:
        if local_path(package) == rel:
            return str(package["canonical"])
    return None


def local_paths(
    packages: list[dict[str, Any]], members: list[str], target: str | None
) -> list[str]:
    """Folders (relative to the lock) of the local packages an env for `target` needs.

    `target` is the package synced (None: a workspace root that is no package itself, whose
    `uv sync` installs every member). Everything it depends on, through any extra or group,
    is followed: a folder too many on the path costs nothing, one too few is an ImportError.
    """
    by_name = {p["canonical"]: p for p in packages}
    todo = [target] if target is not None else list(members)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        todo += by_name[name].get("deps", [])
    found = {local_path(by_name[name]) for name in seen}
    return sorted(p for p in found if p is not None)


def import_root(folder: Path) -> Path:
    """Where a local package's modules are imported from: its `src/` if it has one."""
    return folder / "src" if (folder / "src").is_dir() else folder
