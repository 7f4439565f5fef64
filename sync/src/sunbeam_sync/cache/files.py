"""Files and folders of the cache: published all at once, made read-only, removed, measured.

Publishing follows pex's `atomic_directory`: readers only ever see the final name holding a
complete tree, or no such name at all. The temporary shares the final path's folder, so the
publish is one rename(2) on one filesystem, and its name says whose it was (`gc` reads the pid).
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_PREFIX = ".tmp-"


def temp_sibling(final: Path) -> Path:
    return final.parent / f"{TMP_PREFIX}{final.name}-{os.getpid()}-{os.urandom(4).hex()}"


@contextmanager
def atomic_directory(
    final: Path, *, create: bool = True, keep_theirs: Callable[[], bool] | None = None
) -> Iterator[Path]:
    """Yield a temporary sibling of `final`; rename it to `final` when the block succeeds.

    `create=False` leaves creating the folder to a tool that insists on doing it (uv venv).
    `keep_theirs`: if the rename fails because another process published `final` first and this
    says theirs is complete, keep theirs (content-addressed folders are the same whoever builds
    them). The temporary is removed on any failure.
    """
    tmp = temp_sibling(final)
    if create:
        tmp.mkdir()
    try:
        yield tmp
        try:
            os.rename(tmp, final)
        except OSError:
            if keep_theirs is None or not keep_theirs():
                raise
    finally:
        if os.path.lexists(tmp):
            remove_tree(tmp)


def atomic_write(path: Path, text: str, *, mode: int | None = None) -> None:
    """Replace `path` with `text` so that readers see the old or the new content, never half.

    With `mode`, the file has that mode from its first byte (a secret is never readable by others,
    not even for a moment); without it, the umask's default."""
    tmp = temp_sibling(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        if mode is not None:
            os.chmod(tmp, mode)  # the umask may have taken bits the caller asked for
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


PYCACHE = "__pycache__"


def make_read_only(root: Path, *, folders: bool = True, skip: Path | None = None) -> dict[str, int]:
    """Drop write bits from every regular file (and folder), so nothing can be added or changed.

    Checkouts keep writable folders (`folders=False`): a flow may write next to its code.
    `skip`: a folder the caller seals itself (an env's site-packages, `baseline.seal_site`).
    Returns each folder's ctime once it is sealed (what an env's index records), by path.
    """
    sealed = {}
    for dirpath, dirs, files in os.walk(root):
        if skip is not None:
            dirs[:] = [d for d in dirs if os.path.join(dirpath, d) != str(skip)]
        for name in files:
            drop_write(os.path.join(dirpath, name))
        if folders:
            sealed[dirpath] = drop_write(dirpath)
    return sealed


def seal_pycache(root: Path) -> None:
    for dirpath, _dirs, _files in os.walk(root):
        if os.path.basename(dirpath) == PYCACHE:
            drop_write(dirpath)


def drop_write(path: str) -> int:
    """Drop the write bits of a file or folder; its ctime afterwards."""
    st = os.lstat(path)
    if (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) and st.st_mode & 0o222:
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o222)
        return os.lstat(path).st_ctime_ns
    return st.st_ctime_ns


def seal_file(path: str, st: os.stat_result) -> None:
    """Drop a regular file's write bits, given its `lstat` (symlinks are left alone)."""
    if stat.S_ISREG(st.st_mode) and st.st_mode & 0o222:
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
