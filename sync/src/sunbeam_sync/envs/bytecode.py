"""Bytecode for a new environment, borrowed from its siblings where the source is the same file.

Envs built with hardlinks share each unchanged package's source files (same inode) with every
sibling env built from the same uv cache entry. A sibling's compiled `.pyc` for such a file is
therefore valid here too (Python checks the source's mtime and size, which are the inode's), so
a new lock that adds one package starts with warm bytecode for everything else, instead of every
first run paying seconds of compilation (images often set PYTHONDONTWRITEBYTECODE=1).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sunbeam_sync.cache.locks import FileLock
from sunbeam_sync.envs.manifest import Manifest
from sunbeam_sync.run.credentials import without_credentials
from sunbeam_sync.run.log import SyncLog

_SIBLINGS = 1


def seed_from_siblings(env: Path, site_rel: str, candidates: list[Path]) -> int:
    """Hardlink `.pyc` files from the first suitable candidate env; return how many were linked."""
    site = env / site_rel
    siblings = [p for p in candidates if _hardlinked(p, site_rel)][:_SIBLINGS]
    linked = 0
    for sibling in siblings:
        linked += _seed_one(site, sibling / site_rel)
    return linked


def _hardlinked(env: Path, site_rel: str) -> bool:
    manifest = Manifest.read(env)
    return (
        manifest is not None
        and manifest.link_mode == "hardlink"
        and (manifest.site_packages == site_rel)
    )


def _seed_one(site: Path, sibling_site: Path) -> int:
    linked = 0
    prefix = str(sibling_site) + os.sep
    for dirpath, _dirs, files in os.walk(sibling_site):
        if not dirpath.endswith("__pycache__"):
            continue
        rel_cache = dirpath[len(prefix) :]
        rel_src = os.path.dirname(rel_cache)
        own_cache = os.path.join(site, rel_cache)
        for name in files:
            if not name.endswith(".pyc"):
                continue
            module = name.split(".", 1)[0]
            try:
                mine = os.stat(os.path.join(site, rel_src, module + ".py"))
                theirs = os.stat(os.path.join(sibling_site, rel_src, module + ".py"))
            except OSError:
                continue
            if mine.st_ino != theirs.st_ino or mine.st_dev != theirs.st_dev:
                continue  # a different file (other version, or copied): its bytecode is not ours
            target = os.path.join(own_cache, name)
            try:
                os.makedirs(own_cache, exist_ok=True)
                os.link(os.path.join(dirpath, name), target)
                linked += 1
            except FileExistsError:
                continue
            except OSError:
                return linked  # another filesystem or no permission: nothing more to gain here
    return linked


# Run by the env's own interpreter, detached: one compiler per env at a time (an flock on
# `lock`), then the __pycache__ folders are sealed read-only and `done` is created.
_COMPILE = """
import compileall, fcntl, os, sys
site, done, lock = sys.argv[1:4]
fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    sys.exit(0)
compileall.compile_dir(site, quiet=2, workers=0)
for folder, _dirs, _files in os.walk(site):
    if os.path.basename(folder) == "__pycache__":
        os.chmod(folder, os.stat(folder).st_mode & ~0o222)
open(done, "w").close()
"""


def compile_in_background(env: Path, lease: FileLock, log: SyncLog, done: Path, lock: Path) -> None:
    """Compile .pyc files after publishing, so no run waits for it; create `done` when finished.

    The child inherits our shared lease's open file, so eviction waits for it too. Python writes
    .pyc files atomically, so runs starting meanwhile never see half a file. A compile that was
    killed leaves no `done`: the next use of the env starts it again (`needs_compile`).
    """
    manifest = Manifest.read(env)
    site = env / manifest.site_packages if manifest else env
    python = str(env / "bin" / "python")
    try:
        subprocess.Popen(
            ["nice", "-n", "10", python, "-I", "-c", _COMPILE, str(site), str(done), str(lock)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=(lease.fileno(),),
            env=without_credentials(),
        )
        log.info("build", "compiling bytecode in the background")
    except OSError as exc:
        log.warning("build", f"could not start background bytecode compilation: {exc}")


def needs_compile(done: Path, lock: Path) -> bool:
    """No finished compile and none running (its flock is free)."""
    if done.exists():
        return False
    probe = FileLock(lock, what="bytecode compiler")
    if not probe.try_acquire():
        return False
    probe.release()
    return True
