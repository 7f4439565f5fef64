"""Bytecode for a new env: borrowed from a sibling before the publish, the rest compiled after.

Envs built with hardlinks share each unchanged package's source files (same inode) with every
sibling env built from the same uv cache entry. A sibling's compiled `.pyc` for such a file is
therefore valid here too (Python checks the source's mtime and size, which are the inode's), so
a new lock that adds one package has warm bytecode for everything else when its first run
starts, instead of that run compiling Prefect's modules (a second or more; images often set
PYTHONDONTWRITEBYTECODE=1). Borrowing is hardlinks only (tens of milliseconds), so the build
does it; compiling what is left happens in a background job, so no run waits for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sunbeam_sync.cache.files import PYCACHE, seal_pycache
from sunbeam_sync.cache.layout import CacheLayout
from sunbeam_sync.cache.locks import FileLock
from sunbeam_sync.envs.index import read_index
from sunbeam_sync.envs.manifest import Manifest
from sunbeam_sync.run.credentials import without_credentials
from sunbeam_sync.run.log import SyncLog


def compiled_siblings(layout: CacheLayout) -> list[Path]:
    """Published envs whose bytecode is complete, most recent first (candidates to borrow from)."""
    done = sorted(layout.compiled_markers(), key=lambda p: p.stat().st_mtime, reverse=True)
    return [layout.env(p.stem) for p in done if layout.env(p.stem).is_dir()]


def borrow_bytecode(
    site: Path, site_rel: str, own: dict[str, int], candidates: list[Path]
) -> tuple[int, Path | None]:
    """Hardlink a sibling's `.pyc` for each source file it shares with `site`: (how many, whose).

    `own`: the inode of each of this env's files, by site-relative path (the build's RECORD check
    or the env's index has them). The sibling is the first hardlinked candidate with the same
    site-packages folder; its index gives its files' inodes. A file that is the same inode in both
    is the same bytes, so its bytecode is valid here (Python checks the source's mtime and size).
    """
    for sibling in candidates:
        theirs = _sibling_inodes(sibling, site_rel, site)
        if theirs is not None:
            return _link_shared(site, sibling / site_rel, own, theirs), sibling
    return 0, None


def _sibling_inodes(env: Path, site_rel: str, site: Path) -> dict[str, int] | None:
    manifest = Manifest.read(env)
    if manifest is None or manifest.link_mode != "hardlink" or manifest.site_packages != site_rel:
        return None
    index = read_index(env)
    try:
        same_device = os.stat(env).st_dev == os.stat(site).st_dev
    except OSError:
        return None
    if index is None or not same_device:
        return None
    return {rel: ino for rel, (_mtime, ino) in index.identities().items()}


def _link_shared(
    site: Path, sibling_site: Path, own: dict[str, int], theirs: dict[str, int]
) -> int:
    shared: dict[str, set[str]] = {}  # folder → modules whose source both envs share
    for rel, ino in own.items():
        if rel.endswith(".py") and not rel.startswith("..") and theirs.get(rel) == ino:
            folder, _, name = rel.rpartition("/")
            shared.setdefault(folder, set()).add(name[:-3])
    linked = 0
    for folder, modules in shared.items():
        source = f"{sibling_site}/{folder}/{PYCACHE}" if folder else f"{sibling_site}/{PYCACHE}"
        target = f"{site}/{folder}/{PYCACHE}" if folder else f"{site}/{PYCACHE}"
        try:
            names = [e.name for e in os.scandir(source) if e.name.endswith(".pyc")]
        except OSError:
            continue  # the sibling never compiled this folder
        mine = [n for n in names if n.partition(".")[0] in modules]
        if not mine:
            continue
        try:
            os.makedirs(target, exist_ok=True)
            for name in mine:
                try:
                    os.link(f"{source}/{name}", f"{target}/{name}")
                    linked += 1
                except FileExistsError:
                    continue
        except OSError:
            return linked  # no permission or another filesystem: nothing more to gain here
    return linked


# The compile itself runs in the env's own interpreter (bytecode is per Python version).
_COMPILE = "import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=2, workers=0)"


def compile_in_background(
    env: Path, lease: FileLock, log: SyncLog, done: Path, lock: Path, siblings: list[Path]
) -> None:
    """Compile what the env's build did not borrow, after publishing: no run waits for it.

    A detached, niced job (`main` below) holding one flock per env: it links the `.pyc` files of
    `siblings` (hardlinked envs only; a hit resuming a compile passes them), compiles what is left with the env's interpreter, seals
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
    index = read_index(env)
    if index is not None:
        own = {rel: ino for rel, (_mtime, ino) in index.identities().items()}
        borrow_bytecode(env / manifest.site_packages, manifest.site_packages, own, siblings)
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
