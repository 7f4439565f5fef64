"""Which refs Sunbeam accepts: git's ref-name rules plus a refusal of shell metacharacters.

The sync, the agent and the API all call `ref_error`, so they accept exactly the same refs; each
raises its own error type around it.
"""

from __future__ import annotations

import re

MAX_REF_LENGTH = 255
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
HEX_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
# Beyond git's own check-ref-format rules we refuse shell metacharacters and quotes outright: a ref
# travels through job variables, URLs and logs, and none of these characters belong in one.
_FORBIDDEN = set(" ~^:?*[\\;&|$`<>()'\"!{}#")


class InvalidRef(ValueError):
    """The ref is not one Sunbeam accepts; the message says why, for the person who gave it."""


def validate_ref(ref: object) -> str:
    """Return `ref` (hex SHAs lower-cased) if it is a valid git ref name or SHA; InvalidRef otherwise."""
    if not isinstance(ref, str) or not ref:
        raise InvalidRef("ref is empty: give a branch, a tag or a commit SHA")
    shown = ref.encode("unicode_escape").decode()[:80]
    if len(ref) > MAX_REF_LENGTH:
        raise InvalidRef(f"ref is {len(ref)} characters long; at most {MAX_REF_LENGTH} allowed")
    if HEX_SHA.match(ref):
        return ref.lower()
    problem = ref_problem(ref)
    if problem:
        raise InvalidRef(f"invalid ref {shown!r}: {problem}")
    return ref


def ref_problem(ref: str) -> str | None:
    """Why `ref` is not a valid ref name (git's rules and ours), or None."""
    if ref.startswith("-"):
        return "it must not start with '-'"
    if any(ord(c) < 32 or ord(c) == 127 for c in ref):
        return "it contains control characters"
    bad = sorted({c for c in ref if c in _FORBIDDEN})
    if bad:
        return f"it contains {''.join(bad)!r}, which git refs and Sunbeam do not allow"
    if ".." in ref:
        return "it contains '..'"
    if "@{" in ref or ref == "@":
        return "it contains '@{' or is '@'"
    if ref.startswith("/") or ref.endswith("/") or "//" in ref:
        return "it has an empty path component"
    if ref.endswith("."):
        return "it ends with '.'"
    for part in ref.split("/"):
        if part.startswith("."):
            return "a path component starts with '.'"
        if part.endswith(".lock"):
            return "a path component ends with '.lock'"
    return None
