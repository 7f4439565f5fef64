"""Does a ref exist in the pipeline repository? Asked with `git ls-remote` before commissioning.

Cheap (one round trip that lists only the candidate names) and bounded by a timeout, so a
schedule is never created for a branch or tag the agent could never check out.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import anyio.to_thread

from sunbeam_api.errors import BackendUnavailableError, BadInputError
from sunbeam_contracts.ref_rules import HEX_SHA

if TYPE_CHECKING:  # GitPython loads only when a ref is commissioned, not at the API's start-up
    from git.exc import GitCommandError

# Servers list refs, not commits: a commit SHA cannot be checked without fetching, so it is
# taken as given (the agent fails a run on a missing commit with a clear message).
_USERINFO = re.compile(r"://[^/@\s]+@")
_PEELED = "^{}"


def candidates(ref: str) -> list[str]:
    """The full ref names `ref` may stand for, in git's order of preference."""
    if ref.startswith("refs/") or ref == "HEAD":
        return [ref]
    return [f"refs/heads/{ref}", f"refs/tags/{ref}"]


def _ls_remote(repo_url: str, names: list[str], timeout: float, *options: str) -> str:
    # No prompt for credentials (it would hang the request), no pager, no local config quirks.
    from git.cmd import Git

    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "GCM_INTERACTIVE": "never"}
    git = Git()
    git.update_environment(**env)
    return str(git.ls_remote(*options, repo_url, *names, kill_after_timeout=timeout))


def _cause(exc: GitCommandError, timeout: float) -> str:
    """git's own reason in one line: its first `fatal:` line, never the URL's credentials."""
    stderr = str(exc.stderr or "")
    if "Timeout:" in stderr and "did not complete" in stderr:
        return f"the repository did not answer within {timeout:g} s"
    # GitPython wraps git's stderr as "stderr: '<text>'".
    lines = [
        line.strip().removeprefix("stderr:").strip().strip("'") for line in stderr.splitlines()
    ]
    lines = [line for line in lines if line]
    fatal = [line.removeprefix("fatal:").strip() for line in lines if line.startswith("fatal:")]
    cause = (fatal or lines or [f"git exited with {exc.status}"])[0]
    return _USERINFO.sub("://***@", cause)[:300]


def parse(listing: str, names: list[str]) -> str | None:
    """The commit of the first of `names` that `listing` (ls-remote output) has, or None."""
    found: dict[str, str] = {}
    for line in listing.splitlines():
        sha, _, name = line.partition("\t")
        if name.endswith(_PEELED):  # an annotated tag: the commit it points at wins
            found[name.removesuffix(_PEELED)] = sha
        else:
            found.setdefault(name, sha)
    return next((found[n] for n in names if n in found), None)


async def _listing(repo_url: str, names: list[str], timeout: float, *options: str) -> str:
    from git.exc import GitCommandError

    try:
        return await anyio.to_thread.run_sync(_ls_remote, repo_url, names, timeout, *options)
    except GitCommandError as exc:
        raise BackendUnavailableError(
            "could not list the refs of the pipeline repository (SUNBEAM_PIPELINE_REPO): "
            f"{_cause(exc, timeout)}"
        ) from None
    except OSError as exc:  # git itself missing or not runnable
        raise BackendUnavailableError(f"could not run git to list refs: {exc}") from None


async def resolve_remote_ref(repo_url: str, ref: str, timeout: float) -> str | None:
    """The commit `ref` points at in `repo_url`; None when the repository has no such ref."""
    if HEX_SHA.match(ref):
        return ref
    names = candidates(ref)
    return parse(await _listing(repo_url, names, timeout), names)


async def remote_branches(repo_url: str, timeout: float) -> dict[str, str]:
    """Every branch of `repo_url` and its head commit."""
    listing = await _listing(repo_url, [], timeout, "--heads")
    heads = (line.partition("\t") for line in listing.splitlines())
    return {name.removeprefix("refs/heads/"): sha for sha, _, name in heads if name}


async def require_remote_ref(repo_url: str, ref: str, timeout: float) -> str:
    """The commit `ref` points at in `repo_url`; BadInputError naming the ref when there is none."""
    commit = await resolve_remote_ref(repo_url, ref, timeout)
    if commit is None:
        raise BadInputError(
            f"ref {ref!r} is neither a branch nor a tag of the pipeline repository: "
            "push it first, or check the spelling"
        )
    return commit
