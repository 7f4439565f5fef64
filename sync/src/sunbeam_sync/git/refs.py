"""Validation of user-supplied refs and repository addresses, before git ever sees them.

`validate_repo` decides what kind of address a string is; `check_repo` also refuses the ones that
would reach git's ssh transport as an option (`ssh://-oProxyCommand=...`), and local folders that
are not git repositories, so the user hears what is wrong instead of git's last line.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

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
        return _normal_file_url(repo) if parts.scheme == "file" else repo
    if _SCP_LIKE.match(repo) and not Path(repo).exists():
        return repo
    path = Path(repo).expanduser()
    if not path.exists():
        raise BadInputError(f"repository {repo!r} is neither a URL nor an existing local path")
    return str(path.resolve())


_OPTION_HINT = "starts with '-', which ssh would read as an option"


def check_repo(repo: object) -> str:
    """`validate_repo`, then: no part of the address may start with '-'; local paths are repos."""
    checked = validate_repo(repo)
    if "://" in checked:
        _check_url(checked)
    elif _is_scp_like(checked):
        _check_scp(checked)
    else:
        _check_git_folder(Path(checked), checked)
    return checked


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    netloc = parts.netloc
    host_port = netloc.rpartition("@")[2]
    user = netloc.rpartition("@")[0] if "@" in netloc else ""
    host, _, port = (
        host_port.partition(":") if not host_port.startswith("[") else (host_port, "", "")
    )
    for what, value in (("user name", user), ("host", host), ("port", port)):
        if unquote(value).startswith("-"):
            raise BadInputError(f"repository URL's {what} {_OPTION_HINT}: {url[:200]!r}")
    if port and not port.isdigit():
        raise BadInputError(f"repository URL's port {port[:40]!r} is not a number")
    if parts.scheme == "file":
        _check_git_folder(Path(unquote(parts.path)), url)


def _normal_file_url(url: str) -> str:
    """A file:// URL with its path normalised, refused if a '..' in it climbs out of its folder.

    A plain path is judged after `resolve()`; a file:// URL is judged on the folder it leads to
    too, not on its spelling (`%2e%2e` is '..' to git). Every '..' leaves the folder it follows,
    so any is refused, naming where it leads; `.` and `//` are only normalised away.
    """
    parts = urlsplit(url)
    path = unquote(parts.path)
    segments = path.split("/")
    if ".." in segments:
        target = posixpath.normpath(path)
        raise BadInputError(
            f"repository URL {url[:200]!r} leaves its folder with '..' (it leads to "
            f"{target[:200]}): give the repository's own path"
        )
    if "." not in segments and "//" not in path.lstrip("/"):
        return url  # already normal: the address stays exactly as given (the mirror's name)
    normal = posixpath.normpath(path)
    return urlunsplit(parts._replace(path=quote(normal, safe="/")))


def _is_scp_like(repo: str) -> bool:
    return "@" in repo.split(":", 1)[0] and ":" in repo and not Path(repo).exists()


def _check_scp(repo: str) -> None:
    user, _, rest = repo.partition("@")
    host, _, path = rest.partition(":")
    for what, value in (("user name", user), ("host", host), ("path", path)):
        if value.startswith("-"):
            raise BadInputError(f"repository address's {what} {_OPTION_HINT}: {repo[:200]!r}")


def _check_git_folder(path: Path, shown: str) -> None:
    if not path.exists():
        return  # file:// to nowhere: git reports the missing repository (exit 1, as for URLs)
    bare = (path / "HEAD").is_file() and (path / "objects").is_dir()
    if not (bare or (path / ".git").exists()):
        raise BadInputError(
            f"repository {shown[:200]!r} is a folder but not a git repository "
            "(no .git inside, not a bare repository): give the repository's folder or URL"
        )
