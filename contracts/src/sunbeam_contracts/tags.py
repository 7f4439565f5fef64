"""Flow-run and deployment tags."""

from __future__ import annotations

REF_TAG_PREFIX = "sunbeam-ref:"  # every run the API creates, and every per-ref deployment
COMMIT_TAG_PREFIX = "sunbeam-commit:"  # set by the agent: the commit a run ran (8 hex digits)
PREWARM_TAG = "sunbeam-prewarm"  # sync-only runs created by the push webhook


def ref_tag(ref: str) -> str:
    return f"{REF_TAG_PREFIX}{ref}"


def commit_tag(commit: str, length: int = 8) -> str:
    return f"{COMMIT_TAG_PREFIX}{commit[:length]}"


def tagged_commits(tags: list[str]) -> list[str]:
    """The commits named by `sunbeam-commit:` tags, in order."""
    return [t[len(COMMIT_TAG_PREFIX) :] for t in tags if t.startswith(COMMIT_TAG_PREFIX)]


def tagged_refs(tags: list[str]) -> list[str]:
    """The refs named by `sunbeam-ref:` tags, in order."""
    return [t[len(REF_TAG_PREFIX) :] for t in tags if t.startswith(REF_TAG_PREFIX)]


def prewarm_idempotency_key(commit: str, host_id: str | None = None) -> str:
    """One prewarm per commit, or per commit and host when the webhook targets each host."""
    return f"{PREWARM_TAG}:{commit}" if host_id is None else f"{PREWARM_TAG}:{commit}:{host_id}"
