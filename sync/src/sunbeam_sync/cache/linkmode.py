"""How files get from uv's cache into an env, decided once per cache folder."""

from __future__ import annotations

import fcntl
import functools
import os
import tempfile
from pathlib import Path

from sunbeam_sync.settings import LinkMode

_FICLONE = 0x40049409


@functools.cache
def supports_reflink(folder: Path) -> bool:
    try:
        with (
            tempfile.NamedTemporaryFile(dir=folder) as src,
            tempfile.NamedTemporaryFile(dir=folder) as dst,
        ):
            src.write(b"sunbeam")
            src.flush()
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
            return True
    except OSError:
        return False


def resolve_link_mode(requested: LinkMode, envs: Path) -> LinkMode:
    """auto → clone (copy-on-write: no sharing) where possible, else hardlink + read-only files.

    Hardlinks share inodes with uv's cache: a write into one env would reach the cache and every
    sibling env. We make installed files read-only (flows run as a non-root user), and the RECORD
    check on every use catches what still gets through (root ignores file modes).
    """
    if requested is not LinkMode.AUTO:
        return requested
    return LinkMode.CLONE if supports_reflink(envs) else LinkMode.HARDLINK


def same_filesystem(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return True
