"""How a run shows its ref and commit in the dashboard's run list: its name and its tags."""

from __future__ import annotations

import re

from sunbeam_contracts.tags import COMMIT_TAG_PREFIX, REF_TAG_PREFIX, ref_tag

SHORT_COMMIT = 8
_OURS = re.compile(rf"^\S+@[0-9a-f]{{{SHORT_COMMIT}}} \((?P<name>.*)\)$")


def run_name(name: str, ref: str, commit: str) -> str:
    """`main@1a2b3c4d (brave-tiger)`: the list shows names first, so the ref leads."""
    base = m.group("name") if (m := _OURS.match(name)) else name
    return f"{ref}@{commit[:SHORT_COMMIT]} ({base})" if base else f"{ref}@{commit[:SHORT_COMMIT]}"


def run_tags(tags: list[str], ref: str, commit: str) -> list[str]:
    kept = [t for t in tags if not t.startswith((REF_TAG_PREFIX, COMMIT_TAG_PREFIX))]
    return [*kept, ref_tag(ref), f"{COMMIT_TAG_PREFIX}{commit[:SHORT_COMMIT]}"]


def ref_tags(tags: list[str], ref: str) -> list[str]:
    kept = [t for t in tags if not t.startswith(REF_TAG_PREFIX)]
    return [*kept, ref_tag(ref)]
