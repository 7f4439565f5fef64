"""Paths that several distributions install: which copy uv kept, so that the others are no damage.

dbt-core and every dbt adapter ship their own `dbt/__init__.py` (and Google's, Azure's and other
namespace packages do the same): uv writes each wheel in turn and the copy written last stays.
Which one that is varies from build to build. Read naively, the RECORD of every other owner then
says its file "changed size". The build records, per such path, the owner whose RECORD row the
file on disk matches; verification, the hit index and healing check the path against that row
only. A path whose file matches no owner's row is not recorded, so every owner's row still
checks it and real damage is reported as before.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sunbeam_sync.envs.baseline import file_rows, read_record, sha256
from sunbeam_sync.envs.manifest import Distribution

Row = tuple[str, str, str]  # (dist-info folder, digest, size) of one RECORD row


def kept_copies(site: Path, dists: Iterable[Distribution]) -> dict[str, str]:
    """Site-relative path → dist-info folder whose copy is on disk, for every path that more
    than one RECORD lists with different contents (paths all owners agree on need no entry)."""
    owners: dict[str, list[Row]] = {}
    for dist in dists:
        try:
            record = read_record(site, dist.dist_info)
        except OSError:
            continue  # the check reports the missing RECORD
        for rel, digest, size in file_rows(record):
            owners.setdefault(rel, []).append((dist.dist_info, digest, size))
    kept = {}
    for rel, rows in owners.items():
        if len(rows) > 1 and len({(digest, size) for _d, digest, size in rows}) > 1:
            keeper = _matching(os.path.join(site, rel), rows)
            if keeper is not None:
                kept[rel] = keeper
    return kept


def _matching(path: str, rows: list[Row]) -> str | None:
    """The owner whose row the file matches: by sha256, else by size alone when only one row
    has that size (some wheels ship wrong RECORD hashes, uv issue 11723); None if none does."""
    try:
        size = os.stat(path).st_size
        digest = "sha256=" + sha256(path)
    except OSError:
        return None
    for dist_info, row_digest, _size in rows:
        if row_digest == digest:
            return dist_info
    same_size = [dist_info for dist_info, _digest, row_size in rows if row_size == str(size)]
    return same_size[0] if len(same_size) == 1 else None
