"""Which refs and commits used an environment, and when it was last used (for `list` and `gc`)."""

from __future__ import annotations

import json
import time
from typing import Any

from sunbeam_sync.cache.files import atomic_write
from sunbeam_sync.cache.layout import CacheLayout

_KEEP = 50


def read_usage(layout: CacheLayout, key: str) -> dict[str, Any]:
    try:
        record: dict[str, Any] = json.loads(layout.usage_record(key).read_text())
        return record
    except (OSError, ValueError):
        return {}


def record_use(layout: CacheLayout, key: str, *, repo: str, ref: str, commit: str) -> None:
    with layout.usage_lock(key).acquire(timeout=30):
        data = read_usage(layout, key)
        now = time.time()
        refs: dict[str, float] = data.get("refs", {})
        refs[ref] = now
        commits: dict[str, float] = data.get("commits", {})
        commits[commit] = now
        heads: dict[str, str] = data.get("heads", {})
        heads[ref] = commit  # the newest commit this ref was used at (gc keeps its checkout)
        data.update(
            repo=repo,
            last_used=now,
            uses=int(data.get("uses", 0)) + 1,
            refs=dict(sorted(refs.items(), key=lambda kv: kv[1])[-_KEEP:]),
            commits=dict(sorted(commits.items(), key=lambda kv: kv[1])[-_KEEP:]),
            heads={r: heads[r] for r in refs if r in heads},
        )
        atomic_write(layout.usage_record(key), json.dumps(data, indent=1))
