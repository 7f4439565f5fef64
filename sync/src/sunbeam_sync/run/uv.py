"""uv: the executable the platform pins, the environment it runs with, and the driver the build uses.

The driver (`Uv`) is the one place that runs uv for a build and reads its output: which lines
mean a stale or broken lock, a hash mismatch, an unreachable index, a broken cache entry.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sunbeam_sync.errors import (
    BadInputError,
    GitError,
    LockfileError,
    NetworkError,
    StaleLockError,
    UvError,
)
from sunbeam_sync.project.lockfile import GitSource
from sunbeam_sync.run import proc
from sunbeam_sync.run.credentials import without_credentials
from sunbeam_sync.run.index_auth import index_auth_error
from sunbeam_sync.run.log import SyncLog
from sunbeam_sync.run.retry import corruption, is_transient, refused_credentials, retry
from sunbeam_sync.settings import Bytecode, LinkMode, SyncSettings

_DOWNLOAD = re.compile(r"Failed to (?:download|fetch)(?: and build)? `([^`]+)`")
_BROKEN_ENTRY = re.compile(
    r"Failed to install: \S+ \(([A-Za-z0-9._-]+)==[^)]*\)\s*\n\s*cause: The wheel is invalid: "
    r"Metadata field"
)
_HASH = re.compile(r"Hash mismatch for `([^`]+)`")
# `uv lock --check --verbose`: the lock no longer records what pyproject.toml asks for.
STALE_LOCK_FIX = "uv.lock is out of date with pyproject.toml: run `uv lock` and commit uv.lock"
_STALE = re.compile(r"Resolving despite existing lockfile due to|needs to be updated")
_PARSE = re.compile(r"Failed to parse `[^`]*uv\.lock`")
_GIT_SOURCE = re.compile(r"Failed to (?:download|fetch)(?: and build)? `([^` @]+) @ git\+([^`@]+)")
_NOT_OUR_REF = re.compile(r"not our ref ([0-9a-f]{7,64})")
_UNKNOWN_EXTRA = re.compile(r"Extra `([^`]+)` is not defined in the .*? for `([^`]+)`")
_UNKNOWN_GROUP = re.compile(r"Group `([^`]+)` is not defined in the")


@functools.cache
def uv_bin() -> str:
    try:
        from uv import find_uv_bin  # the pinned `uv` distribution ships the binary

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise UvError("uv is not installed: install the platform with `uv sync`") from None
        return found


@functools.cache
def uv_version() -> str:
    out = subprocess.run(
        [uv_bin(), "--version"],
        capture_output=True,
        text=True,
        check=False,
        env=without_credentials(),
    )
    return out.stdout.strip().removeprefix("uv ").split(" ")[0] or "unknown"


def uv_cache_dir(default: Path) -> Path:
    """uv's cache: UV_CACHE_DIR when set, else `default` (the sync cache's own `uv/`)."""
    return Path(os.environ.get("UV_CACHE_DIR") or default)


def uv_environment(uv_cache: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # The caller's own venv or project settings must never leak into the env we build.
        if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PROJECT", "PYTHONHOME"}
        and not k.startswith("SUNBEAM_GIT_")
    }
    env.setdefault("UV_CACHE_DIR", str(uv_cache))
    env.update(UV_NO_PROGRESS="1", UV_PYTHON_DOWNLOADS=env.get("UV_PYTHON_DOWNLOADS", "never"))
    env.update(extra)
    return env


class Uv:
    """uv as the sync drives it: one cache, one log, one cancel; every failure one clear line."""

    def __init__(
        self,
        uv_cache: Path,
        settings: SyncSettings,
        log: SyncLog,
        cancel: threading.Event | None,
        git: Mapping[str, str] | None = None,
    ) -> None:
        self.cache = uv_cache
        self.settings = settings
        self.log = log
        self.cancel = cancel
        self.git = dict(git or {})  # git config for the lock's git sources (git/sources.py)

    def __call__(
        self,
        args: list[str],
        *,
        failure: str | None = None,
        quiet: bool = False,
        hide: Callable[[str], bool] | None = None,
        **env: str,
    ) -> proc.ProcResult:
        """Run `uv ARGS`; with `failure`, a non-zero exit raises UvError(failure: uv's cause)."""
        result = proc.run(
            [uv_bin(), *args],
            log=self.log,
            tag="uv",
            env=uv_environment(self.cache, **self.git, **env),
            cancel=self.cancel,
            quiet=quiet,
            hide=hide,
        )
        if failure and result.returncode != 0:
            raise UvError(f"{failure}: {_last_error(result.lines)}")
        return result

    def clean(self, names: Sequence[str]) -> None:
        """Drop these distributions from uv's cache."""
        self(["cache", "clean", *names], failure="could not clean the uv cache")

    def check_lock(self, project: Path, python: str) -> bool:
        """LockfileError when uv.lock disagrees with pyproject.toml or does not parse.

        True when uv confirmed the lock, False when it could not tell (index unreachable).
        Offline and verbose first: uv's debug line says whether the requirements the lock
        recorded still match pyproject.toml, which decides staleness with nothing resolved
        (an added package need not be in uv's cache, nor the index reachable). With the build's
        interpreter: left to itself uv would pick one by `.python-version`.
        """
        check = ["lock", "--check", "--project", str(project), "--python", python]
        result = self([*check, "--offline", "--verbose"], quiet=True)
        if result.returncode != 0 and not _lock_verdict(project, result):
            # Offline could not decide (metadata not cached): ask the index.
            result = self(check, quiet=True)
        if result.returncode == 0:
            return True
        _lock_verdict(project, result)
        if is_transient(result.output.lower()):
            self.log.warning(
                "uv", "could not check uv.lock against pyproject.toml (index unreachable)"
            )
            return False
        raise LockfileError(f"uv.lock check failed: {_last_error(result.lines)}")

    def sync_args(
        self,
        project: Path,
        link_mode: LinkMode,
        groups: Sequence[str],
        extras: Sequence[str],
        python: Path,
    ) -> list[str]:
        """`uv sync` of the project's locked third-party packages into the env of `python`."""
        cmd = [
            "sync",
            "--frozen",
            # The target env's own interpreter: any other (a `.python-version` uv would read)
            # makes uv delete the env and create another one.
            "--python",
            str(python),
            # Only third-party packages: the env is shared by every commit with this lock, so the
            # project's own code (and any local path package) comes from the checkout instead.
            "--no-install-local",
            "--no-default-groups",
            "--link-mode",
            link_mode.value,
            "--project",
            str(project),
        ]
        for group in groups:
            cmd += ["--group", group]
        for extra in extras:
            cmd += ["--extra", extra]
        if self.settings.bytecode is Bytecode.BUILD:
            cmd.append("--compile-bytecode")
        return cmd

    def sync(self, target: Path, cmd: list[str], config: Sequence[Path] = ()) -> None:
        """Install `cmd` (from `sync_args`) into `target`; index outages retried, then offline.

        `config`: the project's pyproject.toml and uv.toml files, where a refused index's name is
        looked up (`index_auth`)."""
        result = retry(
            lambda: self(cmd, hide=_is_package_line, UV_PROJECT_ENVIRONMENT=str(target)),
            again=lambda r: r.returncode != 0 and is_transient(r.output),
            attempts=self.settings.uv_retries,
            backoff=self.settings.retry_backoff,
            cancel=self.cancel,
            on_retry=lambda _r, n, delay: self.log.warning(
                "uv", f"package index unreachable; retry {n} in {delay}s"
            ),
        )
        if result.returncode != 0 and (broken := _BROKEN_ENTRY.search(result.output)):
            # uv issue 16841: a crash left a cache entry with an empty METADATA, and every
            # install of that package fails until the entry is cleaned. Clean it, retry once.
            name = broken.group(1)
            self.log.warning(
                "uv",
                f"uv's cache entry for {name} is broken (empty METADATA); cleaning it, retrying",
            )
            self.clean([name])
            result = self(cmd, hide=_is_package_line, UV_PROJECT_ENVIRONMENT=str(target))
        if result.returncode == 0:
            return
        if not is_transient(result.output):
            raise _sync_error(result, config)
        self.log.warning("uv", "package index unreachable; trying to build from uv's cache only")
        offline = self([*cmd, "--offline"], UV_PROJECT_ENVIRONMENT=str(target))
        if offline.returncode == 0:
            self.log.info("uv", "built from uv's cache (offline)")
            return
        missing = _DOWNLOAD.findall(offline.output) or _DOWNLOAD.findall(result.output)
        what = f"package {missing[0]}" if missing else "a package"
        raise NetworkError(
            f"{what} could not be fetched: the package index is unreachable and uv's cache does "
            "not hold it; retry when the index is back"
        )


def _is_package_line(line: str) -> bool:
    # uv's " + pkg==1.0" per installed package: summarised by `envdiff` instead.
    return line.startswith((" + ", " - ", " ~ ")) or line[:2] in {"+ ", "- ", "~ "}


def _sync_error(result: proc.ProcResult, config: Sequence[Path]) -> Exception:
    out = result.output
    if cause := _git_source_error(result):
        return cause
    missing = _DOWNLOAD.findall(out)
    if refused := index_auth_error(out, config, missing[0] if missing else "a package"):
        return refused
    if m := _UNKNOWN_EXTRA.search(out):
        return BadInputError(
            f"extra {m.group(1)!r} is not defined for {m.group(2)} (its "
            "[project.optional-dependencies]): remove it from the deployment's extras (--extra), "
            "or define it there and run `uv lock`"
        )
    if m := _UNKNOWN_GROUP.search(out):
        return BadInputError(
            f"dependency group {m.group(1)!r} is not defined in the project's [dependency-groups]: "
            "remove it from the deployment's groups (--group), or define it there and run `uv lock`"
        )
    if m := _HASH.search(out):
        return UvError(
            f"hash mismatch for {m.group(1)}: the file on the index differs from uv.lock; "
            "re-lock if the package was re-published, otherwise investigate"
        )
    if _PARSE.search(out):
        return unparsable_lock(result.lines)
    if "no solution found" in out.lower() or "does not satisfy" in out.lower():
        return LockfileError(f"uv.lock cannot be installed here: {_last_error(result.lines)}")
    return UvError(f"uv sync failed: {_last_error(result.lines)}")


def _lock_verdict(project: Path, result: proc.ProcResult) -> bool:
    """Raise LockfileError when uv's output says the lock is stale or unparsable; else False."""
    out = result.output
    if _STALE.search(out):
        raise StaleLockError(STALE_LOCK_FIX)
    if _PARSE.search(out):
        raise unparsable_lock(result.lines)
    return False


def unparsable_lock(lines: list[str]) -> LockfileError:
    """uv's reason, its `cause:` line and the detail under its source excerpt, in one line."""
    return LockfileError(
        f"uv.lock cannot be parsed: {uv_cause(lines)}: fix it by hand, or run `uv lock` and "
        "commit uv.lock"
    )


def uv_cause(lines: list[str]) -> str:
    """What uv's `cause:` block says, without the excerpt of the file it draws ("12 | ...")."""
    start = next((i for i, ln in enumerate(lines) if ln.strip().startswith("cause:")), None)
    if start is None:
        return _last_error(lines)
    said = [lines[start].strip().removeprefix("cause:").strip()]
    for line in lines[start + 1 :]:
        text = line.strip()
        if not line.startswith(" ") or text.startswith(("hint:", "cause:")):
            break
        if text and "|" not in text:  # the excerpt's lines all carry uv's gutter bar
            said.append(text)
    return ": ".join(said)[:400]


def _git_source_error(result: proc.ProcResult) -> Exception | None:
    """A git source of the lock that cannot be had: its commit is gone, or its repository is corrupt."""
    source = _GIT_SOURCE.search(result.output)
    name, url = (
        (source.group(1), source.group(2)) if source else ("a git package", "its repository")
    )
    if m := _NOT_OUR_REF.search(result.output):
        return GitSource(name, url, m.group(1)).missing()
    if refused_credentials(result.output):
        return GitError(
            f"the git repository of {name} ({url}) asks for credentials: SUNBEAM_GIT_TOKEN is "
            "given to git sources on the pipeline repository's own host only (set it, if that is "
            f"where {name} lives); from elsewhere, publish {name} to a package index instead"
        )
    if corrupt := corruption(result.lines):
        return UvError(
            f"the git repository of {name} ({url}) is corrupt on its server ({corrupt}): repair "
            "it there (`git fsck`), or lock the package from a healthy copy"
        )
    return None


def _last_error(lines: list[str]) -> str:
    picked = [ln.strip() for ln in lines if ln.strip().startswith(("error:", "Caused by:"))]
    text = " / ".join(p.removeprefix("error: ") for p in picked[-3:]) if picked else ""
    if not text:
        text = next((ln.strip() for ln in reversed(lines) if ln.strip()), "no output")
    return text[:400]
