"""Repository addresses that git could misread as options, and local paths that are no repository.

`refs.validate_repo` decides what kind of address a string is; this module refuses the ones that
would reach git's ssh transport as an option (`ssh://-oProxyCommand=...`), and local folders that
are not git repositories, so the user hears what is wrong instead of git's last line.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from sunbeam_sync.errors import BadInputError
from sunbeam_sync.refs import validate_repo

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
