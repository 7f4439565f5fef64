"""Validation of user-supplied refs and repository URLs, before git ever sees them."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from sunbeam_sync.errors import BadInputError

MAX_REF_LENGTH = 255
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
HEX_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
# Beyond git's own check-ref-format rules we refuse shell metacharacters and quotes outright: a ref
# travels through job variables, URLs and logs, and none of these characters belong in one.
_FORBIDDEN = set(" ~^:?*[\\;&|$`<>()'\"!{}#")
_SCHEMES = {"https", "http", "ssh", "git", "file"}
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")


def validate_ref(ref: object) -> str:
    """Return `ref` if it is a valid git ref name or hex SHA, else raise BadInputError."""
    if not isinstance(ref, str) or not ref:
        raise BadInputError("ref is empty: give a branch, a tag or a commit SHA")
    shown = ref.encode("unicode_escape").decode()[:80]
    if len(ref) > MAX_REF_LENGTH:
        raise BadInputError(f"ref is {len(ref)} characters long; at most {MAX_REF_LENGTH} allowed")
    if HEX_SHA.match(ref):
        return ref.lower()
    problem = _ref_problem(ref)
    if problem:
        raise BadInputError(f"invalid ref {shown!r}: {problem}")
    return ref


def _ref_problem(ref: str) -> str | None:
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


def validate_repo(repo: object) -> str:
    """Return a git URL or absolute local path for `repo`, refusing anything git could misread."""
    if not isinstance(repo, str) or not repo.strip():
        raise BadInputError("repository is empty: give a git URL or a local path")
    if repo.startswith("-"):
        raise BadInputError("repository must not start with '-'")
    if any(ord(c) < 32 or ord(c) == 127 for c in repo) or " " in repo:
        raise BadInputError("repository contains whitespace or control characters")
    if "::" in repo.split("/")[0]:
        raise BadInputError("git remote helpers ('transport::address') are not allowed")
    if "://" in repo:
        parts = urlsplit(repo)
        if parts.scheme not in _SCHEMES:
            raise BadInputError(
                f"unsupported repository scheme {parts.scheme!r}: use https, ssh, git or file"
            )
        if parts.password is not None or (parts.scheme in {"http", "https"} and parts.username):
            raise BadInputError(
                "repository URL contains credentials; put the token in SUNBEAM_GIT_TOKEN instead"
            )
        if parts.scheme != "file" and not parts.hostname:
            raise BadInputError(f"repository URL {repo!r} has no host")
        return repo
    if _SCP_LIKE.match(repo) and not Path(repo).exists():
        return repo
    path = Path(repo).expanduser()
    if not path.exists():
        raise BadInputError(f"repository {repo!r} is neither a URL nor an existing local path")
    return str(path.resolve())
