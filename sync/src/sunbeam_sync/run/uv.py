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
from collections.abc import Callable, Sequence
from pathlib import Path

from sunbeam_sync.errors import LockfileError, NetworkError, UvError
from sunbeam_sync.run import proc
from sunbeam_sync.run.credentials import without_credentials
from sunbeam_sync.run.log import SyncLog
from sunbeam_sync.run.retry import is_transient, retry
from sunbeam_sync.settings import Bytecode, LinkMode, SyncSettings

_DOWNLOAD = re.compile(r"Failed to (?:download|fetch)(?: and build)? `([^`]+)`")
_BROKEN_ENTRY = re.compile(
    r"Failed to install: \S+ \(([A-Za-z0-9._-]+)==[^)]*\)\s*\n\s*cause: The wheel is invalid: "
    r"Metadata field"
)
_HASH = re.compile(r"Hash mismatch for `([^`]+)`")


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
        self, uv_cache: Path, settings: SyncSettings, log: SyncLog, cancel: threading.Event | None
    ) -> None:
        self.cache = uv_cache
        self.settings = settings
        self.log = log
        self.cancel = cancel

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
            env=uv_environment(self.cache, **env),
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

    def check_lock(self, project: Path) -> None:
        """Fail fast when uv.lock disagrees with pyproject.toml, before anything is built."""
        # Offline first: with uv's cached metadata the check costs no network round trips.
        result = self(["lock", "--check", "--offline", "--project", str(project)], quiet=True)
        if result.returncode != 0 and "needs to be updated" not in result.output:
            # Offline could not decide (metadata not cached): ask the index.
            result = self(["lock", "--check", "--project", str(project)], quiet=True)
        if result.returncode == 0:
            return
        out = result.output.lower()
        if "needs to be updated" in out:
            raise LockfileError(
                f"uv.lock in {project.name or '.'} is out of date with pyproject.toml: "
                "run `uv lock` and commit the result"
            )
        if is_transient(out):
            self.log.warning(
                "uv", "could not check uv.lock against pyproject.toml (index unreachable)"
            )
            return
        if "failed to parse" in out or "toml parse error" in out:
            raise LockfileError(f"uv.lock cannot be parsed: {_last_error(result.lines)}")
        raise LockfileError(f"uv.lock check failed: {_last_error(result.lines)}")

    def sync_args(
        self,
        project: Path,
        link_mode: LinkMode,
        groups: Sequence[str],
        extras: Sequence[str],
    ) -> list[str]:
        """`uv sync` of the project's locked third-party packages (the env is the target)."""
        cmd = [
            "sync",
            "--frozen",
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

    def sync(self, target: Path, cmd: list[str]) -> None:
        """Install `cmd` (from `sync_args`) into `target`; index outages retried, then offline."""
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
            raise _sync_error(result)
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


def _sync_error(result: proc.ProcResult) -> Exception:
    out = result.output
    if m := _HASH.search(out):
        return UvError(
            f"hash mismatch for {m.group(1)}: the file on the index differs from uv.lock; "
            "re-lock if the package was re-published, otherwise investigate"
        )
    if "failed to parse" in out.lower() and "uv.lock" in out:
        return LockfileError(f"uv.lock cannot be parsed: {_last_error(result.lines)}")
    if "no solution found" in out.lower() or "does not satisfy" in out.lower():
        return LockfileError(f"uv.lock cannot be installed here: {_last_error(result.lines)}")
    return UvError(f"uv sync failed: {_last_error(result.lines)}")


def _last_error(lines: list[str]) -> str:
    picked = [ln.strip() for ln in lines if ln.strip().startswith(("error:", "Caused by:"))]
    text = " / ".join(p.removeprefix("error: ") for p in picked[-3:]) if picked else ""
    if not text:
        text = next((ln.strip() for ln in reversed(lines) if ln.strip()), "no output")
    return text[:400]
