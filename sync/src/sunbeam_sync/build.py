"""Build an environment in a temporary sibling folder and publish it with one rename."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sunbeam_sync import proc
from sunbeam_sync.atomic import atomic_directory
from sunbeam_sync.baseline import InodeHashes, interpreter_identity, site_files, write_hashes
from sunbeam_sync.bytecode import seed_from_siblings
from sunbeam_sync.envdiff import closest, describe
from sunbeam_sync.envindex import write_index
from sunbeam_sync.envkey import EnvKey
from sunbeam_sync.errors import LockfileError, NetworkError, UvError
from sunbeam_sync.fsutil import make_read_only
from sunbeam_sync.interpreter import Interpreter, env_prefix
from sunbeam_sync.layout import CacheLayout
from sunbeam_sync.linkmode import same_filesystem
from sunbeam_sync.logs import SyncLog
from sunbeam_sync.manifest import Distribution, Manifest
from sunbeam_sync.retry import is_transient, retry
from sunbeam_sync.settings import Bytecode, LinkMode, SyncSettings
from sunbeam_sync.timing import Timings
from sunbeam_sync.uvtool import uv_bin, uv_environment, uv_version
from sunbeam_sync.verify import check_records

if TYPE_CHECKING:
    from concurrent.futures import Future

_DOWNLOAD = re.compile(r"Failed to (?:download|fetch)(?: and build)? `([^`]+)`")
_BROKEN_ENTRY = re.compile(
    r"Failed to install: \S+ \(([A-Za-z0-9._-]+)==[^)]*\)\s*\n\s*cause: The wheel is invalid: "
    r"Metadata field"
)
_HASH = re.compile(r"Hash mismatch for `([^`]+)`")
Expect = dict[str, str] | None  # site-relative path → sha256 the env must match

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
        self.phases = Timings()

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
    def build(
        self, req: BuildRequest, *, clean: Sequence[str] = (), expect: Expect = None
    ) -> Manifest:
        """Check the lock, build the env of `req.key` and publish it under its final name.

        Healing passes `clean`: distributions to drop from uv's cache first (their files there
        were damaged through a hardlink), and `expect`: the hashes the env had when first built;
        a rebuild whose files still differ is not published.
        """
        if clean:
            self.log.warning(
                "heal", f"removing {', '.join(clean)} from uv's cache before rebuilding"
            )
            self._uv(["cache", "clean", *clean], failure="could not clean the uv cache")
        cache_home = self.uv_cache if self.uv_cache.exists() else self.layout.root
        if not same_filesystem(cache_home, self.layout.envs):
            self.log.warning(
                "build", "uv's cache is on another filesystem: every install is a full copy"
            )
        self.phases = Timings()
        from concurrent.futures import ThreadPoolExecutor  # builds only: hits never load it

        # `uv lock --check` runs beside the install (both only read the lock); nothing is
        # published unless it passed, and its verdict wins over an install error.
        with ThreadPoolExecutor(max_workers=1) as pool:
            check = pool.submit(self._timed_check, req.project)
            try:
                manifest = self._attempts(req, expect, check)
            except Exception:
                if check.exception() is not None:
                    raise check.exception() from None  # type: ignore[misc]
                raise
        published = (p for p in self.layout.envs.iterdir() if not p.name.startswith("."))
        self.log.info("build", describe(manifest, closest(manifest, published)))
        self.log.info(
            "build",
            f"published {req.key.key[:12]} ({len(manifest.distributions)} packages, "
            f"{req.link_mode.value} links) in {manifest.build_seconds:.2f}s",
        )
        return manifest

    def _timed_check(self, project: Path) -> None:
        with self.phases("uv lock --check (beside the install)"):
            self.check_lock(project)

    def _attempts(self, req: BuildRequest, expect: Expect, check: Future[None]) -> Manifest:
        started = time.monotonic()
        for attempt in range(1, _BUILD_ATTEMPTS + 1):
            try:
                with atomic_directory(self.layout.env(req.key.key), create=False) as tmp:
                    manifest = self._install(tmp, req, started)
                    if attempt < _BUILD_ATTEMPTS:
                        self._drop_modified_cache_entries(tmp, manifest)
                    check.result()
                    self._seal(tmp, req, manifest, started, expect)
                return manifest
            except _Rebuild:
                continue
        raise AssertionError("unreachable")

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
        with self.phases("uv venv"):
            self._uv(venv, failure="could not create the virtualenv")
        if not (tmp / "pyvenv.cfg").is_file():  # never point uv sync at a non-venv folder
            raise UvError(f"uv venv did not create {tmp}/pyvenv.cfg")
        with self.phases("uv sync"):
            self._sync(tmp, req)
        manifest = self._manifest(tmp, req, time.monotonic() - started)
        if req.link_mode is LinkMode.HARDLINK:
            with self.phases("bytecode from siblings"):
                siblings = self._compiled_siblings()
                seeded = seed_from_siblings(tmp, manifest.site_packages, siblings)
            if seeded:
                self.log.info("build", f"reused {seeded} bytecode files from sibling envs")
        return manifest

    def _seal(
        self, tmp: Path, req: BuildRequest, manifest: Manifest, started: float, expect: Expect
    ) -> None:
        """Last checks, the baseline and the manifest, just before the publish."""
        with self.phases("checks and baseline"):
            self._baseline(tmp, manifest, expect)
        # The manifest goes in before the folders lose their write bits.
        manifest.build_seconds = round(time.monotonic() - started, 3)
        manifest.build_phases = self.phases.seconds
        manifest.write(tmp)
        make_read_only(tmp, writable_pycache=self.settings.bytecode is Bytecode.BACKGROUND)
        with self.phases("interpreter check and index"):
            _check_prefix(tmp)
            write_index(tmp, manifest)  # last: it records the folders as they are published
        compiled = self.layout.state / f"{req.key.key}.compiled"
        compiled.unlink(missing_ok=True)
        if self.settings.bytecode is Bytecode.BUILD:
            compiled.touch()

    def _baseline(self, tmp: Path, manifest: Manifest, expect: Expect) -> None:
        records = check_records(tmp, manifest)
        if records.problems:
            raise UvError(f"the new environment is incomplete: {records.problems[0]}")
        site = tmp / manifest.site_packages
        manifest.pyvenv_cfg = (tmp / "pyvenv.cfg").read_text()
        manifest.interpreter, manifest.interpreter_stat = interpreter_identity(tmp)
        manifest.unowned = {
            rel: os.lstat(p).st_size for rel, p in site_files(site) if rel not in records.owned
        }
        # Copies and clones are new inodes; hardlinked files reuse what earlier builds hashed.
        known = InodeHashes(self.layout.state / "file-hashes.json")
        hashes = write_hashes(tmp, site, known)
        known.save()
        if expect is not None:
            still = sorted(
                rel for rel, digest in expect.items() if hashes.get(rel, digest) != digest
            )
            if still:
                raise UvError(
                    f"the rebuilt environment still differs from what was first built "
                    f"({', '.join(still[:3])}): not publishing it; uv's cache may be damaged, "
                    "run `uv cache clean` and retry"
                )

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
            lambda: self._uv(cmd, hide=_is_package_line, UV_PROJECT_ENVIRONMENT=str(target)),
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
            self._uv(["cache", "clean", name], failure="could not clean the uv cache")
            result = self._uv(cmd, hide=_is_package_line, UV_PROJECT_ENVIRONMENT=str(target))
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
        self,
        args: list[str],
        *,
        failure: str | None = None,
        quiet: bool = False,
        hide: Callable[[str], bool] | None = None,
        **env: str,
    ) -> proc.ProcResult:
        result = proc.run(
            [uv_bin(), *args],
            log=self.log,
            tag="uv",
            env=uv_environment(self.uv_cache, **env),
            cancel=self.cancel,
            quiet=quiet,
            hide=hide,
        )
        if failure and result.returncode != 0:
            raise UvError(f"{failure}: {_last_error(result.lines)}")
        return result


def _check_prefix(env: Path) -> None:
    """The env's interpreter starts and knows it is in the env (the index vouches for it later)."""
    prefix = env_prefix(env / "bin" / "python")
    if prefix is None or os.path.realpath(prefix) != os.path.realpath(env):
        said = "does not start" if prefix is None else f"reports prefix {prefix}"
        raise UvError(
            f"the new environment's interpreter {said}: check the base interpreter "
            "(SUNBEAM_PYTHON / UV_PYTHON)"
        )


def site_packages(env: Path) -> Path:
    found = sorted(env.glob("lib/python*/site-packages")) or sorted(env.glob("lib/*/site-packages"))
    if not found:
        raise UvError(f"no site-packages folder in {env}")
    return found[0]


def _is_package_line(line: str) -> bool:
    # uv's " + pkg==1.0" per installed package: summarised by `envdiff` instead.
    return line.startswith((" + ", " - ", " ~ ")) or line[:2] in {"+ ", "- ", "~ "}


def _distribution(dist_info: Path) -> Distribution:
    from importlib.metadata import PathDistribution  # builds only: hits never load it

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
