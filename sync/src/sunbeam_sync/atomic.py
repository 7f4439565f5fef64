"""Publish a folder or a file all at once: build it under a temporary sibling name, then rename.

In the style of pex's `atomic_directory`: readers only ever see the final name holding a
complete tree, or no such name at all. The temporary shares the final path's folder, so the
publish is one rename(2) on one filesystem, and its name says whose it was (`gc` reads the pid).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sunbeam_sync.fsutil import remove_tree

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
    """Replace `path` with `text` so that readers see the old or the new content, never half."""
    tmp = temp_sibling(path)
    try:
        tmp.write_text(text)
        if mode is not None:
            tmp.chmod(mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
