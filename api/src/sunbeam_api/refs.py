"""Ref validation: a git branch/tag name (per `git check-ref-format`) or a hex commit SHA.

Stand-in until `sunbeam_sync.refs.validate_ref` lands on main; the rule is the same.
"""

from __future__ import annotations

import re

from sunbeam_api.errors import BadInputError

_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
MAX_REF_LENGTH = 255


def validate_ref(ref: str) -> str:
    """Return `ref` unchanged when it is safe to hand to git; raise BadInputError otherwise."""
    if not isinstance(ref, str) or not ref:
        raise BadInputError("ref must be a non-empty string")
    problem = _problem(ref)
    if problem:
        raise BadInputError(f"invalid ref {ref[:80]!r}: {problem}")
    return ref


def _problem(ref: str) -> str | None:
    if len(ref) > MAX_REF_LENGTH:
        return f"longer than {MAX_REF_LENGTH} characters"
    if ref.startswith("-"):
        return "must not start with '-'"
    if ref == "@":
        return "'@' alone is not a ref"
    if _FORBIDDEN.search(ref):
        return "contains a space, control character or one of ~ ^ : ? * [ \\"
    if ".." in ref or "@{" in ref:
        return "contains '..' or '@{'"
    if ref.startswith("/") or ref.endswith("/") or "//" in ref:
        return "has an empty path component"
    if ref.endswith("."):
        return "ends with '.'"
    for part in ref.split("/"):
        if part.startswith("."):
            return "has a component starting with '.'"
        if part.endswith(".lock"):
            return "has a component ending with '.lock'"
    return None
