"""The environments of the cache: verify → lock → re-check → quarantine → build → publish."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sunbeam_sync.cache.files import TMP_PREFIX, remove_tree
from sunbeam_sync.cache.layout import CacheLayout
from sunbeam_sync.cache.locks import FileLock
from sunbeam_sync.envs.baseline import read_hashes
from sunbeam_sync.envs.build import Builder, BuildRequest
from sunbeam_sync.envs.bytecode import compile_in_background, compiled_siblings, needs_compile
from sunbeam_sync.envs.cache_entries import entries_holding
from sunbeam_sync.envs.manifest import Manifest
from sunbeam_sync.envs.verify import Damage, read_damage, verify_env
from sunbeam_sync.project.lockcheck import check_lock_once
from sunbeam_sync.run.log import SyncLog
from sunbeam_sync.run.uv import Uv, uv_cache_dir
from sunbeam_sync.settings import Bytecode, SyncSettings


class Outcome(StrEnum):
    HIT = "hit"  # a verified env was there (or another run built it while we waited)
    BUILT = "built"  # there was none: built and published
    HEALED = "healed"  # there was a damaged one: moved aside, rebuilt


@dataclass(frozen=True)
class EnvOutcome:
    outcome: Outcome
    reason: str | None = None  # what was wrong, for HEALED


# key → inode of the env folder this process built and verified (see `_recheck`).
_PUBLISHED: dict[str, int] = {}


class EnvStore:
    def __init__(
        self,
        layout: CacheLayout,
        settings: SyncSettings,
        log: SyncLog,
        cancel: threading.Event | None = None,
    ) -> None:
        self.layout = layout
        self.settings = settings
        self.log = log
        self.cancel = cancel

    def check(self, key: str) -> Damage | None:
        """None if the env of `key` is there and intact; otherwise what is wrong with it."""
        env = self.layout.env(key)
        if not env.exists():
            return Damage("missing", missing=True)
        marker = self.layout.damage_marker(key)
        if marker.exists():
            found = read_damage(marker)
            return Damage(
                f"a deep verification found changed files ({found.reason[:200]})",
                found.modified,
                files=found.files,
            )
        return verify_env(env, key)

    def check_lock(self, project: Path, python: str, inputs: Sequence[Path]) -> None:
        """LockfileError unless the project's uv.lock is current (remembered per content)."""
        uv = Uv(uv_cache_dir(self.layout.uv_cache), self.settings, self.log, self.cancel)
        check_lock_once(uv, self.layout, project, python, inputs)

    def ensure(self, request: BuildRequest, damage: Damage | None, lease: FileLock) -> EnvOutcome:
        """Make the env of `request.key` usable, given what `check` found before any lock."""
        key = request.key.key
        env = self.layout.env(key)
        if damage is None:
            self.log.info("env", f"cache hit: {env} verified")
            self._resume_compile(key, lease)
            return EnvOutcome(Outcome.HIT)
        with self.layout.build_lock(key).acquire(
            timeout=self.settings.lock_timeout, log=self.log, cancel=self.cancel
        ):
            self._clear_stale_temporaries(key)
            damage = self._recheck(key, damage)
            if damage is None:
                self.log.info("env", f"built meanwhile by another run; reusing {env}")
                return EnvOutcome(Outcome.HIT)
            outcome, bad = self._quarantine(env, damage)
            self._build(request, damage, bad)
        if self.settings.bytecode is Bytecode.BACKGROUND:  # the build borrowed what it could
            compile_in_background(env, lease, self.log, *self._compile_files(key, borrow=False))
        return outcome

    def _compile_files(self, key: str, *, borrow: bool = True) -> tuple[Path, Path, list[Path]]:
        """What the background job needs: its marker, its lock, the envs to borrow from."""
        done, lock = self.layout.compiled_marker(key), self.layout.compile_lock(key)
        return done, lock, compiled_siblings(self.layout) if borrow else []

    def _resume_compile(self, key: str, lease: FileLock) -> None:
        if self.settings.bytecode is not Bytecode.BACKGROUND:
            return
        done, lock = self.layout.compiled_marker(key), self.layout.compile_lock(key)
        if needs_compile(done, lock):  # a hit: only now are the siblings looked for
            self.log.info("build", "bytecode compilation never finished; resuming it")
            compile_in_background(self.layout.env(key), lease, self.log, *self._compile_files(key))

    def _recheck(self, key: str, damage: Damage) -> Damage | None:
        # Someone may have built it while we waited. If that was a thread of this process, its
        # post-build verification (moments ago, same folder) stands for ours.
        if damage.missing and _published_here(self.layout.env(key), key):
            return None
        return self.check(key)

    def _quarantine(self, env: Path, damage: Damage) -> tuple[EnvOutcome, Path | None]:
        if damage.missing:
            self.log.info("env", f"no environment for this lock yet; building {env.name[:12]}")
            return EnvOutcome(Outcome.BUILT), None
        bad = self.layout.quarantine_path(env)
        env.rename(bad)
        self.log.warning("heal", f"environment {env.name[:12]} is damaged: {damage}")
        self.log.warning("heal", f"moved it aside to {bad.name}; rebuilding")
        return EnvOutcome(Outcome.HEALED, str(damage)), bad

    def _build(self, request: BuildRequest, damage: Damage, bad: Path | None) -> None:
        key = request.key.key
        clean: list[str] = []
        expect = None
        builder = Builder(self.layout, self.settings, self.log, self.cancel, request.git_config)
        if bad is not None and damage.modified:
            old = Manifest.read(bad)
            # A changed file that uv's cache holds too (hardlinked) is damage in the cache.
            if old is not None:
                clean = entries_holding(builder.uv_cache, bad / old.site_packages, damage.files)
            expect = read_hashes(bad)
        builder.build(request, clean=clean, expect=expect)
        self.layout.damage_marker(key).unlink(missing_ok=True)
        _PUBLISHED[key] = self.layout.env(key).stat().st_ino

    def _clear_stale_temporaries(self, key: str) -> None:
        # Only the holder of the key's build lock creates its temporaries, and we hold it now:
        # whatever is left belongs to a build that was killed.
        for tmp in self.layout.envs.glob(f"{TMP_PREFIX}{key}-*"):
            remove_tree(tmp)


def _published_here(env: Path, key: str) -> bool:
    try:
        return _PUBLISHED.get(key) == env.stat().st_ino
    except OSError:
        return False
