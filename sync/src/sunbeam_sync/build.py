"""Build an environment in a temporary sibling folder and publish it with one rename."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PathDistribution
from pathlib import Path

from sunbeam_sync import proc
from sunbeam_sync.atomic import atomic_directory
from sunbeam_sync.bytecode import seed_from_siblings
from sunbeam_sync.envkey import EnvKey
from sunbeam_sync.errors import LockfileError, NetworkError, UvError
from sunbeam_sync.fsutil import make_read_only
from sunbeam_sync.interpreter import Interpreter
from sunbeam_sync.layout import CacheLayout
from sunbeam_sync.linkmode import same_filesystem
from sunbeam_sync.logs import SyncLog
from sunbeam_sync.manifest import Distribution, Manifest
from sunbeam_sync.retry import is_transient, retry
from sunbeam_sync.settings import Bytecode, LinkMode, SyncSettings
from sunbeam_sync.uvtool import uv_bin, uv_environment, uv_version
from sunbeam_sync.verify import check_records

_DOWNLOAD = re.compile(r"Failed to (?:download|fetch)(?: and build)? `([^`]+)`")
_HASH = re.compile(r"Hash mismatch for `([^`]+)`")
# A build whose hardlinked files turn out modified cleans those uv cache entries and tries again.
_BUILD_ATTEMPTS = 2


class _Rebuild(Exception):
    """Raised inside a build attempt to throw its folder away and start the next one."""


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
        if is_transient(out):
            self.log.warning(
                "uv", "could not check uv.lock against pyproject.toml (index unreachable)"
            )
            return
        if "failed to parse" in out or "toml parse error" in out:
            raise LockfileError(f"uv.lock cannot be parsed: {_last_error(result.lines)}")
        raise LockfileError(f"uv.lock check failed: {_last_error(result.lines)}")

    # ----------------------------------------------------------------- build
    def build(self, req: BuildRequest) -> Manifest:
        """Check the lock, build the env of `req.key` and publish it under its final name."""
        cache_home = self.uv_cache if self.uv_cache.exists() else self.layout.root
        if not same_filesystem(cache_home, self.layout.envs):
            self.log.warning(
                "build", "uv's cache is on another filesystem: every install is a full copy"
            )
        self.check_lock(req.project)
        started = time.monotonic()
        for attempt in range(1, _BUILD_ATTEMPTS + 1):
            try:
                with atomic_directory(self.layout.env(req.key.key), create=False) as tmp:
                    manifest = self._install(tmp, req, started)
                    if attempt < _BUILD_ATTEMPTS:
                        self._drop_modified_cache_entries(tmp, manifest)
                    self._seal(tmp, req, manifest, started)
                break
            except _Rebuild:
                continue
        self.log.info(
            "build",
            f"published {req.key.key[:12]} ({len(manifest.distributions)} packages, "
            f"{req.link_mode.value} links) in {manifest.build_seconds:.2f}s",
        )
        return manifest

    def _drop_modified_cache_entries(self, tmp: Path, manifest: Manifest) -> None:
        modified = sorted(check_records(tmp, manifest).modified)
        if modified:
            # Hardlinks share inodes with uv's cache: a cache entry changed after install.
            # Drop those entries and build once more from fresh downloads.
            self.log.warning("build", f"uv cache entries were modified: {', '.join(modified)}")
            self._uv(["cache", "clean", *modified], failure="could not clean the uv cache")
            raise _Rebuild

    def _install(self, tmp: Path, req: BuildRequest, started: float) -> Manifest:
        venv = ["venv", "--relocatable", "--no-project", "--python", req.interpreter.path, str(tmp)]
        self._uv(venv, failure="could not create the virtualenv")
        if not (tmp / "pyvenv.cfg").is_file():  # never point uv sync at a non-venv folder
            raise UvError(f"uv venv did not create {tmp}/pyvenv.cfg")
        self._sync(tmp, req)
        manifest = self._manifest(tmp, req, time.monotonic() - started)
        if req.link_mode is LinkMode.HARDLINK:
            seeded = seed_from_siblings(tmp, manifest.site_packages, self._compiled_siblings())
            if seeded:
                self.log.info("build", f"reused {seeded} bytecode files from sibling envs")
        return manifest

    def _seal(self, tmp: Path, req: BuildRequest, manifest: Manifest, started: float) -> None:
        """Last checks and the manifest, just before the publish."""
        records = check_records(tmp, manifest)
        if records.problems:
            raise UvError(f"the new environment is incomplete: {records.problems[0]}")
        make_read_only(tmp)
        manifest.build_seconds = round(time.monotonic() - started, 3)
        manifest.write(tmp)
        compiled = self.layout.state / f"{req.key.key}.compiled"
        compiled.unlink(missing_ok=True)
        if self.settings.bytecode is Bytecode.BUILD:
            compiled.touch()

    def _compiled_siblings(self) -> list[Path]:
        """Published envs whose bytecode compilation finished, most recent first."""
        done = sorted(
            self.layout.state.glob("*.compiled"), key=lambda p: p.stat().st_mtime, reverse=True
        )
        return [self.layout.env(p.stem) for p in done if self.layout.env(p.stem).is_dir()]

    def _sync_command(self, req: BuildRequest) -> list[str]:
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
        return cmd

    def _sync(self, target: Path, req: BuildRequest) -> None:
        cmd = self._sync_command(req)
        result = retry(
            lambda: self._uv(cmd, UV_PROJECT_ENVIRONMENT=str(target)),
            again=lambda r: r.returncode != 0 and is_transient(r.output),
            attempts=self.settings.uv_retries,
            backoff=self.settings.retry_backoff,
            cancel=self.cancel,
            on_retry=lambda _r, n, delay: self.log.warning(
                "uv", f"package index unreachable; retry {n} in {delay}s"
            ),
        )
        if result.returncode == 0:
            return
        if not is_transient(result.output):
            raise _sync_error(result)
        self.log.warning("uv", "package index unreachable; trying to build from uv's cache only")
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
        site = site_packages(env)
        dists = [_distribution(entry) for entry in sorted(site.glob("*.dist-info"))]
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


def site_packages(env: Path) -> Path:
    found = sorted(env.glob("lib/python*/site-packages")) or sorted(env.glob("lib/*/site-packages"))
    if not found:
        raise UvError(f"no site-packages folder in {env}")
    return found[0]


def _distribution(dist_info: Path) -> Distribution:
    meta = PathDistribution(dist_info).metadata
    name, version = meta.get("Name") or "", meta.get("Version") or ""
    if not name:
        name, _, version = dist_info.name.removesuffix(".dist-info").partition("-")
    record = dist_info / "RECORD"
    files = sum(1 for _ in record.open()) if record.exists() else 0
    return Distribution(name=name, version=version, dist_info=dist_info.name, files=files)


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
