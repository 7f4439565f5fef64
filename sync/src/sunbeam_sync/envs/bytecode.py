"""Bytecode for a new env, made after its publish: borrowed from siblings, the rest compiled.

Envs built with hardlinks share each unchanged package's source files (same inode) with every
sibling env built from the same uv cache entry. A sibling's compiled `.pyc` for such a file is
therefore valid here too (Python checks the source's mtime and size, which are the inode's), so
a new lock that adds one package gets warm bytecode for everything else within a moment, instead
of its first runs paying seconds of compilation (images often set PYTHONDONTWRITEBYTECODE=1).
Both happen in one background job, so a new env's run never waits for either.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sunbeam_sync.cache.files import seal_pycache
from sunbeam_sync.cache.layout import CacheLayout
from sunbeam_sync.cache.locks import FileLock
from sunbeam_sync.envs.manifest import Manifest
from sunbeam_sync.run.credentials import without_credentials
from sunbeam_sync.run.log import SyncLog

_SIBLINGS = 1


def compiled_siblings(layout: CacheLayout) -> list[Path]:
    """Published envs whose bytecode is complete, most recent first (candidates to borrow from)."""
    done = sorted(layout.compiled_markers(), key=lambda p: p.stat().st_mtime, reverse=True)
    return [layout.env(p.stem) for p in done if layout.env(p.stem).is_dir()]


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


# The compile itself runs in the env's own interpreter (bytecode is per Python version).
_COMPILE = "import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=2, workers=0)"


def compile_in_background(
    env: Path, lease: FileLock, log: SyncLog, done: Path, lock: Path, siblings: list[Path]
) -> None:
    """Borrow siblings' bytecode, then compile the rest, after publishing: no run waits for it.

    A detached, niced job (`main` below) holding one flock per env: it links the `.pyc` files of
    `siblings` (hardlinked envs only), compiles what is left with the env's interpreter, seals
    the __pycache__ folders read-only and creates `done`. It inherits our shared lease's open
    file, so eviction waits for it too. Python writes .pyc files atomically, so runs starting
    meanwhile never see half a file. A killed job leaves no `done`: the next use of the env
    starts it again (`needs_compile`).
    """
    job = [sys.executable, "-I", "-m", "sunbeam_sync.envs.bytecode", str(env), str(done), str(lock)]
    try:
        subprocess.Popen(
            ["nice", "-n", "10", *job, *map(str, siblings)],
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


def main(argv: list[str]) -> int:
    """The background job: ENV DONE LOCK [SIBLING_ENV...]."""
    env, done, lock, *siblings = (Path(a) for a in argv)
    job = FileLock(lock, what="bytecode compiler")
    if not job.try_acquire():
        return 0  # another job compiles this env
    manifest = Manifest.read(env)
    if manifest is None:
        return 1
    if manifest.link_mode == "hardlink":
        seed_from_siblings(env, manifest.site_packages, siblings)
    site = env / manifest.site_packages
    python = str(env / "bin" / "python")
    subprocess.run([python, "-I", "-c", _COMPILE, str(site)], check=False, env=os.environ.copy())
    seal_pycache(site)
    done.touch()
    return 0


def needs_compile(done: Path, lock: Path) -> bool:
    """No finished compile and none running (its flock is free)."""
    if done.exists():
        return False
    probe = FileLock(lock, what="bytecode compiler")
    if not probe.try_acquire():
        return False
    probe.release()
    return True


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
