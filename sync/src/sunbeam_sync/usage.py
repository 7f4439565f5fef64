"""Which refs and commits used an environment, and when it was last used (for `list` and `gc`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sunbeam_sync.atomic import atomic_write
from sunbeam_sync.layout import CacheLayout
from sunbeam_sync.locks import FileLock

_KEEP = 50


def _path(layout: CacheLayout, key: str) -> Path:
    return layout.state / f"{key}.json"


def read_usage(layout: CacheLayout, key: str) -> dict[str, Any]:
    try:
        return json.loads(_path(layout, key).read_text())
    except (OSError, ValueError):
        return {}


def record_use(layout: CacheLayout, key: str, *, repo: str, ref: str, commit: str) -> None:
    with FileLock(layout.locks / f"{key}.state", what="usage record").acquire(timeout=30):
        data = read_usage(layout, key)
        now = time.time()
        refs: dict[str, float] = data.get("refs", {})
        refs[ref] = now
        commits: dict[str, float] = data.get("commits", {})
        commits[commit] = now
        data.update(
            repo=repo,
            last_used=now,
            uses=int(data.get("uses", 0)) + 1,
            refs=dict(sorted(refs.items(), key=lambda kv: kv[1])[-_KEEP:]),
            commits=dict(sorted(commits.items(), key=lambda kv: kv[1])[-_KEEP:]),
        )
        atomic_write(_path(layout, key), json.dumps(data, indent=1))


def damage_marker(layout: CacheLayout, key: str) -> Path:
    """Set by `verify --deep` when content changed but sizes did not: the next use rebuilds."""
    return layout.state / f"{key}.damaged"
