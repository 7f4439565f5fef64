"""Small filesystem helpers shared by checkouts, builds and eviction."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path


def make_read_only(root: Path) -> None:
    """Drop write bits from every regular file; folders stay writable for __pycache__."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o222:
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o222)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


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
