"""A distribution's RECORD file: the files it installed, with their sizes and hashes."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path


def read_record(site: Path, dist_info: str) -> list[list[str]]:
    """Every row of `site/dist_info/RECORD` (OSError if there is none)."""
    with (site / dist_info / "RECORD").open(newline="") as fh:
        return list(csv.reader(fh))


def file_rows(rows: Iterable[list[str]]) -> Iterator[tuple[str, str, str]]:
    """(path, digest, size) of each row that names a file, bytecode aside (.pyc come and go)."""
    for row in rows:
        if len(row) < 3 or not row[0]:
            continue
        rel = row[0]
        if rel.endswith(".pyc") or "__pycache__" in rel:
            continue
        yield rel, row[1], row[2]
