"""Validation of user-supplied refs and repository URLs, before git ever sees them."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from sunbeam_contracts import ref_rules
from sunbeam_contracts.ref_rules import FULL_SHA, HEX_SHA, MAX_REF_LENGTH
from sunbeam_sync.errors import BadInputError

__all__ = ["FULL_SHA", "HEX_SHA", "MAX_REF_LENGTH", "validate_ref", "validate_repo"]

_SCHEMES = {"https", "http", "ssh", "git", "file"}
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")


def validate_ref(ref: object) -> str:
    """Return `ref` if it is a valid git ref name or hex SHA, else raise BadInputError.

    The rules live in `sunbeam_contracts.ref_rules`, shared with the API.
    """
    try:
        return ref_rules.validate_ref(ref)
    except ref_rules.InvalidRef as exc:
        raise BadInputError(str(exc)) from None


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
