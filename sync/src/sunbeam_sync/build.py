"""Build an environment in a temporary sibling folder and publish it with one rename."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sunbeam_sync import proc
from sunbeam_sync.bytecode import seed_from_siblings
from sunbeam_sync.envkey import EnvKey
from sunbeam_sync.errors import LockfileError, NetworkError, UvError
from sunbeam_sync.fsutil import make_read_only
from sunbeam_sync.interpreter import Interpreter
from sunbeam_sync.layout import CacheLayout
from sunbeam_sync.locks import FileLock
from sunbeam_sync.logs import SyncLog
from sunbeam_sync.manifest import Distribution, Manifest
from sunbeam_sync.settings import Bytecode, LinkMode, SyncSettings
from sunbeam_sync.uvtool import uv_bin, uv_environment, uv_version
from sunbeam_sync.verify import check_records

_NETWORK = (
    "error sending request",
    "tcp connect error",
    "connection refused",
    "dns error",
    "failed to fetch",
    "operation timed out",
    "could not connect",
    "connection reset",
    "network connectivity is disabled",
)
_DOWNLOAD = re.compile(r"Failed to (?:download|fetch)(?: and build)? `([^`]+)`")
_HASH = re.compile(r"Hash mismatch for `([^`]+)`")


@dataclass
class BuildRequest:
    key: EnvKey
    project: Path
    interpreter: Interpreter
    link_mode: LinkMode
    groups: Sequence[str]
    extras: Sequence[str]
    repo: str
    commit: str


class Builder:
    def __init__(
        self,
        layout: CacheLayout,
        settings: SyncSettings,
        log: SyncLog,
        cancel: threading.Event | None,
    ) -> None:
        self.layout = layout
        self.settings = settings
        self.log = log
        self.cancel = cancel
        self.uv_cache = Path(os.environ.get("UV_CACHE_DIR") or layout.uv_cache)

    # ---------------------------------------------------------------- checks
    def check_lock(self, project: Path) -> None:
        """Fail fast when uv.lock disagrees with pyproject.toml, before anything is built."""
        # Offline first: with uv's cached metadata the check costs no network round trips.
        result = self._uv(["lock", "--check", "--offline", "--project", str(project)], quiet=True)
        if result.returncode != 0 and "needs to be updated" not in result.output:
            # Offline could not decide (metadata not cached): ask the index.
            result = self._uv(["lock", "--check", "--project", str(project)], quiet=True)
        if result.returncode == 0:
            return
        out = result.output.lower()
        if "needs to be updated" in out:
            raise LockfileError(
                f"uv.lock in {project.name or '.'} is out of date with pyproject.toml: "
                "run `uv lock` and commit the result"
            )
        if any(s in out for s in _NETWORK):
            self.log.warning(
                "uv", "could not check uv.lock against pyproject.toml (index unreachable)"
            )
            return
        if "failed to parse" in out or "toml parse error" in out:
            raise LockfileError(f"uv.lock cannot be parsed: {_last_error(result.lines)}")
        raise LockfileError(f"uv.lock check failed: {_last_error(result.lines)}")

    # ----------------------------------------------------------------- build
    def build(self, req: BuildRequest) -> Manifest:
        final = self.layout.env(req.key.key)
        tmp = self.layout.temp_sibling(final)
        started = time.monotonic()
        try:
            self._uv(
                [
                    "venv",
                    "--relocatable",
                    "--no-project",
                    "--python",
                    req.interpreter.path,
                    str(tmp),
                ],
                failure="could not create the virtualenv",
            )
            if not (tmp / "pyvenv.cfg").is_file():  # never point uv sync at a non-venv folder
                raise UvError(f"uv venv did not create {tmp}/pyvenv.cfg")
            self._sync(tmp, req)
            manifest = self._manifest(tmp, req, time.monotonic() - started)
            if req.link_mode is LinkMode.HARDLINK:
                seeded = seed_from_siblings(tmp, manifest.site_packages, self._compiled_siblings())
                if seeded:
                    self.log.info("build", f"reused {seeded} bytecode files from sibling envs")
            records = check_records(tmp, manifest)
            if records.modified:
                # Hardlinks share inodes with uv's cache: a cache entry changed after install.
                # Drop those entries and build once more from fresh downloads.
                names = sorted(records.modified)
                self.log.warning("build", f"uv cache entries were modified: {', '.join(names)}")
                self._uv(["cache", "clean", *names], failure="could not clean the uv cache")
                shutil.rmtree(tmp)
                return self.build(req)
            if records.problems:
                raise UvError(f"the new environment is incomplete: {records.problems[0]}")
            make_read_only(tmp)
            manifest.build_seconds = round(time.monotonic() - started, 3)
            manifest.write(tmp)
            compiled = self.layout.state / f"{req.key.key}.compiled"
            compiled.unlink(missing_ok=True)
            os.rename(tmp, final)  # the publish: atomic on one filesystem
            if self.settings.bytecode is Bytecode.BUILD:
                compiled.touch()
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.log.info(
            "build",
            f"published {final.name[:12]} ({len(manifest.distributions)} packages, "
            f"{req.link_mode.value} links) in {manifest.build_seconds:.2f}s",
        )
        return manifest

    def _compiled_siblings(self) -> list[Path]:
        """Published envs whose bytecode compilation finished, most recent first."""
        done = sorted(
            self.layout.state.glob("*.compiled"), key=lambda p: p.stat().st_mtime, reverse=True
        )
        return [self.layout.env(p.stem) for p in done if self.layout.env(p.stem).is_dir()]

    def _sync(self, target: Path, req: BuildRequest) -> None:
        cmd = [
            "sync",
            "--frozen",
            # Only third-party packages: the env is shared by every commit with this lock, so the
            # project's own code (and any local path package) comes from the checkout instead.
            "--no-install-local",
            "--no-default-groups",
            "--link-mode",
            req.link_mode.value,
            "--project",
            str(req.project),
        ]
        for group in req.groups:
            cmd += ["--group", group]
        for extra in req.extras:
            cmd += ["--extra", extra]
        if self.settings.bytecode is Bytecode.BUILD:
            cmd.append("--compile-bytecode")
        attempts = max(1, self.settings.uv_retries)
        result: proc.ProcResult | None = None
        for attempt in range(1, attempts + 1):
            result = self._uv(cmd, UV_PROJECT_ENVIRONMENT=str(target))
            if result.returncode == 0:
                return
            if not _is_network(result):
                raise _sync_error(result)
            if attempt < attempts:
                delay = self.settings.retry_backoff * 2 ** (attempt - 1)
                self.log.warning("uv", f"package index unreachable; retry {attempt} in {delay}s")
                if self.cancel is not None:
                    self.cancel.wait(delay)
                else:
                    time.sleep(delay)
        self.log.warning("uv", "package index unreachable; trying to build from uv's cache only")
        assert result is not None
        offline = self._uv([*cmd, "--offline"], UV_PROJECT_ENVIRONMENT=str(target))
        if offline.returncode == 0:
            self.log.info("uv", "built from uv's cache (offline)")
            return
        missing = _DOWNLOAD.findall(offline.output) or _DOWNLOAD.findall(result.output)
        what = f"package {missing[0]}" if missing else "a package"
        raise NetworkError(
            f"{what} could not be fetched: the package index is unreachable and uv's cache does "
            "not hold it; retry when the index is back"
        )

    def _manifest(self, env: Path, req: BuildRequest, seconds: float) -> Manifest:
        site = _site_packages(env)
        dists = []
        for entry in sorted(site.iterdir()):
            if entry.name.endswith(".dist-info"):
                name, version = _name_version(entry)
                files = (
                    sum(1 for _ in (entry / "RECORD").open()) if (entry / "RECORD").exists() else 0
                )
                dists.append(
                    Distribution(name=name, version=version, dist_info=entry.name, files=files)
                )
        return Manifest(
            key=req.key.key,
            inputs=req.key.inputs,
            python=req.interpreter.path,
            site_packages=str(site.relative_to(env)),
            distributions=dists,
            uv_version=uv_version(),
            link_mode=req.link_mode.value,
            built_at=time.time(),
            build_seconds=round(seconds, 3),
            repo=req.repo,
            commit=req.commit,
        )

    def _uv(
        self, args: list[str], *, failure: str | None = None, quiet: bool = False, **env: str
    ) -> proc.ProcResult:
        result = proc.run(
            [uv_bin(), *args],
            log=self.log,
            tag="uv",
            env=uv_environment(self.uv_cache, **env),
            cancel=self.cancel,
            quiet=quiet,
        )
        if failure and result.returncode != 0:
            raise UvError(f"{failure}: {_last_error(result.lines)}")
        return result


def compile_in_background(env: Path, lease: FileLock, log: SyncLog, done: Path) -> None:
    """Compile .pyc files after publishing, so no run waits for it; touch `done` when finished.

    The child inherits our shared lease's open file, so eviction waits for it too.
    Python writes .pyc files atomically, so runs starting meanwhile never see half a file.
    """
    site = _site_packages(env)
    script = 'nice -n 10 "$1" -m compileall -q -j 0 "$2" >/dev/null 2>&1; touch "$3"'
    try:
        subprocess.Popen(
            ["sh", "-c", script, "sh", str(env / "bin" / "python"), str(site), str(done)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=(lease.fileno(),),
        )
        log.info("build", "compiling bytecode in the background")
    except OSError as exc:
        log.warning("build", f"could not start background bytecode compilation: {exc}")


def _site_packages(env: Path) -> Path:
    found = sorted(env.glob("lib/python*/site-packages")) or sorted(env.glob("lib/*/site-packages"))
    if not found:
        raise UvError(f"no site-packages folder in {env}")
    return found[0]


def _name_version(dist_info: Path) -> tuple[str, str]:
    name = version = ""
    try:
        with (dist_info / "METADATA").open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("Name:"):
                    name = line[5:].strip()
                elif line.startswith("Version:"):
                    version = line[8:].strip()
                if (name and version) or not line.strip():
                    break
    except OSError:
        pass
    if not name:
        name, _, version = dist_info.name.removesuffix(".dist-info").partition("-")
    return name, version


def _is_network(result: proc.ProcResult) -> bool:
    out = result.output.lower()
    return any(s in out for s in _NETWORK)


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
