"""Which of uv's cache entries hold an environment's damaged files, and only those.

uv unpacks every wheel once into its cache (`archive-v*/<id>/`) and links or copies the files
into each env. A damaged file in an env is damage in uv's cache only if the cache holds that very
file: the same inode (a hardlink, written through) or, for an env that copied or cloned the entry,
the same bytes (the entry was damaged before the install). Healing cleans exactly those entries:
a healthy entry (another owner of an overlapping path, a sibling dist) is never removed.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from sunbeam_sync.envs.baseline import sha256


def entries_holding(uv_cache: Path, site: Path, files: Iterable[str]) -> list[str]:
    """Names of the distributions whose uv cache entry holds one of `files` (site-relative)."""
    names: set[str] = set()
    for rel in files:
        if rel.startswith(".."):
            continue  # scripts and data live elsewhere in an entry; not read here
        try:
            st = os.stat(site / rel)
        except OSError:
            continue  # gone from the env: the cache keeps its own link or copy
        pattern = os.path.join(glob.escape(str(uv_cache)), "archive-v*", "*", glob.escape(rel))
        for cached in glob.glob(pattern):
            if _same_file(cached, st, str(site / rel)):
                name = _entry_name(Path(cached[: -len(rel) - 1]))
                if name:
                    names.add(name)
    return sorted(names)


def _same_file(cached: str, st: os.stat_result, path: str) -> bool:
    try:
        theirs = os.stat(cached)
    except OSError:
        return False
    if (theirs.st_dev, theirs.st_ino) == (st.st_dev, st.st_ino):
        return True
    return theirs.st_size == st.st_size and sha256(cached) == sha256(path)


def _entry_name(entry: Path) -> str | None:
    """The distribution an unpacked wheel in uv's cache belongs to (its METADATA's Name)."""
    for dist_info in entry.glob("*.dist-info"):
        try:
            with (dist_info / "METADATA").open(encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if line.startswith("Name:"):
                        return line.partition(":")[2].strip()
                    if not line.strip():
                        break
        except OSError:
            continue
    return None
