"""Build an environment in a temporary sibling folder and publish it with one rename."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sunbeam_sync.cache.files import atomic_directory, make_read_only
from sunbeam_sync.cache.layout import CacheLayout
from sunbeam_sync.cache.linkmode import same_filesystem
from sunbeam_sync.envs.baseline import (
    InodeHashes,
    SiteTree,
    interpreter_identity,
    read_record,
    seal_site,
    sealed_hashes,
    walk_site,
    write_hashes,
)
from sunbeam_sync.envs.bytecode import borrow_bytecode, compiled_siblings
from sunbeam_sync.envs.cache_entries import entries_holding
from sunbeam_sync.envs.diff import comparison_base, describe
from sunbeam_sync.envs.index import write_index
from sunbeam_sync.envs.manifest import Distribution, Manifest
from sunbeam_sync.envs.overlaps import kept_copies
from sunbeam_sync.envs.verify import RecordCheck, check_records
from sunbeam_sync.errors import UvError
from sunbeam_sync.project.envkey import EnvKey
from sunbeam_sync.project.interpreter import Interpreter, PrefixProbe
from sunbeam_sync.project.lockcheck import check_lock_once
from sunbeam_sync.run.log import SyncLog, Timings
from sunbeam_sync.run.uv import Uv, uv_cache_dir, uv_version
from sunbeam_sync.settings import Bytecode, LinkMode, SyncSettings

if TYPE_CHECKING:
    from concurrent.futures import Future

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
    default_branch: str | None = None  # the repository's: its env is what the log compares with
    lock_inputs: Sequence[Path] = ()  # the files the lock check reads (`Lockfile.check_inputs`)
    git_config: Mapping[str, str] = field(default_factory=dict)  # git/sources.py: uv's git


class Builder:
    def __init__(
        self,
        layout: CacheLayout,
        settings: SyncSettings,
        log: SyncLog,
        cancel: threading.Event | None,
        git: Mapping[str, str] | None = None,
    ) -> None:
        """`git`: git config for the lock's git sources (`BuildRequest.git_config`)."""
        self.layout = layout
        self.settings = settings
        self.log = log
        self.cancel = cancel
        self.uv_cache = uv_cache_dir(layout.uv_cache)
        self.uv = Uv(self.uv_cache, settings, log, cancel, git=git)
        self.phases = Timings()

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
            self.uv.clean(clean)
        cache_home = self.uv_cache if self.uv_cache.exists() else self.layout.root
        if not same_filesystem(cache_home, self.layout.envs):
            self.log.warning(
                "build", "uv's cache is on another filesystem: every install is a full copy"
            )
        self.phases = Timings()
        from concurrent.futures import ThreadPoolExecutor  # builds only: hits never load it

        # `uv lock --check` runs beside the install (both only read the lock); nothing is
        # published unless it passed, and its verdict wins over an install error. A lock
        # already found current (lockcheck.py) is not checked again.
        with ThreadPoolExecutor(max_workers=1) as pool:
            check = pool.submit(self._timed_check, req)
            try:
                manifest = self._attempts(req, expect, check)
            except Exception:
                if check.exception() is not None:
                    raise check.exception() from None  # type: ignore[misc]
                raise
        base, what = comparison_base(manifest, self.layout, req.repo, req.default_branch)
        self.log.info("build", describe(manifest, base, what))
        self.log.info(
            "build",
            f"published {req.key.key[:12]} ({len(manifest.distributions)} packages, "
            f"{req.link_mode.value} links) in {manifest.build_seconds:.2f}s",
        )
        return manifest

    def _timed_check(self, req: BuildRequest) -> None:
        with self.phases("uv lock --check (beside the install)"):
            python = req.interpreter.path
            check_lock_once(self.uv, self.layout, req.project, python, req.lock_inputs)

    def _attempts(self, req: BuildRequest, expect: Expect, check: Future[None]) -> Manifest:
        started = time.monotonic()
        for attempt in range(1, _BUILD_ATTEMPTS + 1):
            try:
                with atomic_directory(self.layout.env(req.key.key), create=False) as tmp:
                    manifest = self._install(tmp, req, started)
                    # The env's interpreter is asked for its prefix while the files are checked.
                    with PrefixProbe(tmp / "bin" / "python") as probe:
                        records = check_records(tmp, manifest, keep=True)
                        if attempt < _BUILD_ATTEMPTS:
                            self._drop_modified_cache_entries(tmp, manifest, records)
                        self._borrow_bytecode(tmp, manifest, records)
                        check.result()
                        self._seal(tmp, req, manifest, records, started, expect, probe)
                return manifest
            except _Rebuild:
                continue
        raise AssertionError("unreachable")

    def _drop_modified_cache_entries(
        self, tmp: Path, manifest: Manifest, records: RecordCheck
    ) -> None:
        changed = records.changed
        # Fresh from uv's cache, yet not what RECORD says: the cache entry holding the file was
        # changed after it was unpacked. Drop those entries (only those) and build once more.
        damaged = entries_holding(self.uv_cache, tmp / manifest.site_packages, changed)
        if damaged:
            self.log.warning("build", f"uv cache entries were modified: {', '.join(damaged)}")
            self.uv.clean(damaged)
            raise _Rebuild

    def _borrow_bytecode(self, tmp: Path, manifest: Manifest, records: RecordCheck) -> None:
        """A sibling's `.pyc` of every file both share, before the walk that seals the folders."""
        # Only where bytecode is compiled after the publish: a build compiling it (BUILD) would
        # find every file there, and OFF asks for none.
        if (
            manifest.link_mode != LinkMode.HARDLINK.value
            or self.settings.bytecode is not Bytecode.BACKGROUND
        ):
            return
        with self.phases("bytecode borrowed"):
            own = {row[0]: row[3] for rows in records.rows.values() for row in rows}
            site, siblings = manifest.site_packages, compiled_siblings(self.layout)
            linked, sibling = borrow_bytecode(tmp / site, site, own, siblings)
        if sibling is not None:
            self.log.info("build", f"borrowed {linked} compiled files from env {sibling.name[:12]}")

    def _install(self, tmp: Path, req: BuildRequest, started: float) -> Manifest:
        venv = ["venv", "--relocatable", "--no-project", "--python", req.interpreter.path, str(tmp)]
        with self.phases("uv venv"):
            self.uv(venv, failure="could not create the virtualenv")
        if not (tmp / "pyvenv.cfg").is_file():  # never point uv sync at a non-venv folder
            raise UvError(f"uv venv did not create {tmp}/pyvenv.cfg")
        with self.phases("uv sync"):
            python = tmp / "bin" / "python"
            args = self.uv.sync_args(req.project, req.link_mode, req.groups, req.extras, python)
            self.uv.sync(tmp, args, config=req.lock_inputs)
        with self.phases("manifest"):
            return self._manifest(tmp, req, time.monotonic() - started)

    def _seal(
        self,
        tmp: Path,
        req: BuildRequest,
        manifest: Manifest,
        records: RecordCheck,
        started: float,
        expect: Expect,
        probe: PrefixProbe,
    ) -> None:
        """Last checks, the baseline and the manifest, just before the publish."""
        with self.phases("checks and baseline"):
            site = tmp / manifest.site_packages
            tree = walk_site(site)  # the one walk of site-packages: baseline, seal and index
            self._baseline(tmp, manifest, records, tree, expect)
        # The manifest goes in before the folders lose their write bits.
        manifest.build_seconds = round(time.monotonic() - started, 3)
        manifest.build_phases = self.phases.seconds
        manifest.write(tmp)
        with self.phases("read-only"):
            background = self.settings.bytecode is Bytecode.BACKGROUND
            # Site-packages' files were sealed with the baseline; its folders and bytecode here.
            sealed = seal_site(tree, writable_pycache=background)
            sealed.update(make_read_only(tmp, skip=site))
        with self.phases("interpreter check"):
            _check_prefix(tmp, probe)
        with self.phases("index"):
            # Last: it records the folders as published. The files' mtimes and inodes are the
            # RECORD check's: sealing changes neither.
            write_index(tmp, manifest, sealed, records.rows)
        compiled = self.layout.compiled_marker(req.key.key)
        compiled.unlink(missing_ok=True)
        if self.settings.bytecode is Bytecode.BUILD:
            compiled.touch()

    def _baseline(
        self, tmp: Path, manifest: Manifest, records: RecordCheck, tree: SiteTree, expect: Expect
    ) -> None:
        if records.problems:
            raise UvError(f"the new environment is incomplete: {records.problems[0]}")
        manifest.pyvenv_cfg = (tmp / "pyvenv.cfg").read_text()
        manifest.interpreter, manifest.interpreter_stat = interpreter_identity(tmp)
        manifest.unowned = {
            rel: os.lstat(p).st_size for rel, p, _link in tree.files if rel not in records.owned
        }
        # Copies and clones are new inodes; hardlinked files reuse what earlier builds hashed.
        # Their write bits go on the way (`seal_site` then seals only folders and bytecode).
        known = InodeHashes(self.layout.file_hashes)
        hashes = sealed_hashes(tree.files, known, records.stats)
        write_hashes(tmp, hashes)
        known.save()
        if expect is not None:
            # An overlapping path holds whichever owner's copy uv wrote last, which varies from
            # build to build: it was matched against that owner's RECORD row instead.
            still = sorted(
                rel
                for rel, digest in expect.items()
                if hashes.get(rel, digest) != digest and rel not in manifest.overlaps
            )
            if still:
                raise UvError(
                    f"the rebuilt environment still differs from what was first built "
                    f"({', '.join(still[:3])}): not publishing it; uv's cache may be damaged, "
                    "run `uv cache clean` and retry"
                )

    def _manifest(self, env: Path, req: BuildRequest, seconds: float) -> Manifest:
        site = site_packages(env)
        dists = [_distribution(entry) for entry in sorted(site.glob("*.dist-info"))]
        overlaps = kept_copies(site, dists)
        if overlaps:
            self.log.info("build", _said_overlaps(overlaps))
        return Manifest(
            key=req.key.key,
            inputs=req.key.inputs,
            python=req.interpreter.path,
            site_packages=str(site.relative_to(env)),
            distributions=dists,
            uv_version=_uv_version(env),
            link_mode=req.link_mode.value,
            built_at=time.time(),
            build_seconds=round(seconds, 3),
            repo=req.repo,
            commit=req.commit,
            overlaps=overlaps,
        )


def _said_overlaps(overlaps: dict[str, str]) -> str:
    shown = ", ".join(
        f"{rel} (kept {dist.removesuffix('.dist-info')})"
        for rel, dist in list(overlaps.items())[:3]
    )
    more = f" and {len(overlaps) - 3} more" if len(overlaps) > 3 else ""
    return f"{len(overlaps)} paths installed by several packages: {shown}{more}"


def _uv_version(env: Path) -> str:
    """The uv that made `env`, as its pyvenv.cfg says (no `uv --version` process)."""
    for line in (env / "pyvenv.cfg").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "uv" and value.strip():
            return value.strip()
    return uv_version()


def _check_prefix(env: Path, probe: PrefixProbe) -> None:
    """The env's interpreter started and knew it was in the env (the index vouches for it later)."""
    prefix = probe.prefix()
    if prefix is None:
        raise UvError(
            f"the new environment's interpreter does not start ({probe.failure}): check the "
            "base interpreter (SUNBEAM_PYTHON / UV_PYTHON) and the .pth files the lock's "
            "packages install (Python runs them at every start)"
        )
    if os.path.realpath(prefix) != os.path.realpath(env):
        raise UvError(
            f"the new environment's interpreter reports prefix {prefix}: check the base "
            "interpreter (SUNBEAM_PYTHON / UV_PYTHON)"
        )


def site_packages(env: Path) -> Path:
    found = sorted(env.glob("lib/python*/site-packages")) or sorted(env.glob("lib/*/site-packages"))
    if not found:
        raise UvError(f"no site-packages folder in {env}")
    return found[0]


def _distribution(dist_info: Path) -> Distribution:
    name, version = _name_and_version(dist_info / "METADATA")
    if not name:
        name, _, version = dist_info.name.removesuffix(".dist-info").partition("-")
    try:
        files = len(read_record(dist_info.parent, dist_info.name))
    except OSError:
        files = 0
    return Distribution(name=name, version=version, dist_info=dist_info.name, files=files)


def _name_and_version(metadata: Path) -> tuple[str, str]:
    """`Name` and `Version` from a METADATA file's header (what importlib.metadata would say)."""
    found: dict[str, str] = {}
    try:
        with metadata.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    break  # the header ends at the first empty line; the description follows
                key, sep, value = line.partition(":")
                if sep and key in ("Name", "Version") and key not in found:
                    found[key] = value.strip()
    except OSError:
        pass
    return found.get("Name", ""), found.get("Version", "")
