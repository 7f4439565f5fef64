"""Small filesystem helpers shared by checkouts, builds and eviction."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

PYCACHE = "__pycache__"


def make_read_only(root: Path, *, folders: bool = True, writable_pycache: bool = False) -> None:
    """Drop write bits from every regular file (and folder), so nothing can be added or changed.

    Checkouts keep writable folders (`folders=False`): a flow may write next to its code.
    With `writable_pycache`, every folder holding .py files gets a writable `__pycache__` first:
    the background compiler fills them and seals them (`seal_pycache`) when it is done.
    """
    for dirpath, dirs, files in os.walk(root):
        if writable_pycache and PYCACHE not in dirs and any(f.endswith(".py") for f in files):
            os.mkdir(os.path.join(dirpath, PYCACHE))
        for name in files:
            _drop_write(os.path.join(dirpath, name))
        if folders and not (writable_pycache and os.path.basename(dirpath) == PYCACHE):
            _drop_write(dirpath)


def seal_pycache(root: Path) -> None:
    for dirpath, _dirs, _files in os.walk(root):
        if os.path.basename(dirpath) == PYCACHE:
            _drop_write(dirpath)


def _drop_write(path: str) -> None:
    st = os.lstat(path)
    if (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) and st.st_mode & 0o222:
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o222)


def remove_tree(path: Path) -> bool:
    """Delete `path` (read-only or unreadable folders included); True if it is gone."""
    make_deletable(path)
    shutil.rmtree(path, ignore_errors=True)
    return not os.path.lexists(path)


def make_deletable(root: Path) -> None:
    # Top-down: a folder must be readable and writable by us before its entries can be listed
    # and removed (root ignores modes; a non-root gc does not).
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            st = os.lstat(folder)
            if not stat.S_ISDIR(st.st_mode):
                continue
            if st.st_mode & 0o700 != 0o700:
                os.chmod(folder, stat.S_IMODE(st.st_mode) | 0o700)
            with os.scandir(folder) as entries:
                stack.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            continue


def disk_usage(root: Path) -> tuple[int, int]:
    """(bytes on disk of inodes only this tree links, apparent bytes of all files)."""
    own = apparent = 0
    seen: set[int] = set()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            apparent += st.st_size
            if st.st_ino in seen:
                continue
            seen.add(st.st_ino)
            if st.st_nlink == 1 or not stat.S_ISREG(st.st_mode):
                own += st.st_blocks * 512
    return own, apparent
