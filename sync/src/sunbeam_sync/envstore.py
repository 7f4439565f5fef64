"""The environments of the cache: verify → lock → re-check → quarantine → build → publish."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sunbeam_sync.atomic import TMP_PREFIX
from sunbeam_sync.build import Builder, BuildRequest
from sunbeam_sync.bytecode import compile_in_background
from sunbeam_sync.fsutil import remove_tree
from sunbeam_sync.layout import CacheLayout
from sunbeam_sync.locks import FileLock
from sunbeam_sync.logs import SyncLog
from sunbeam_sync.settings import Bytecode, SyncSettings
from sunbeam_sync.usage import damage_marker
from sunbeam_sync.verify import Damage, verify_env


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
        marker = damage_marker(self.layout, key)
        if marker.exists():
            reason = marker.read_text().strip()[:200]
            return Damage(f"a deep verification found changed files ({reason})")
        return verify_env(env, key)

    def ensure(self, request: BuildRequest, damage: Damage | None, lease: FileLock) -> EnvOutcome:
        """Make the env of `request.key` usable, given what `check` found before any lock."""
        key = request.key.key
        env = self.layout.env(key)
        if damage is None:
            self.log.info("env", f"cache hit: {env} verified")
            return EnvOutcome(Outcome.HIT)
        with self.layout.build_lock(key).acquire(
            timeout=self.settings.lock_timeout, log=self.log, cancel=self.cancel
        ):
            self._clear_stale_temporaries(key)
            damage = self._recheck(key, damage)
            if damage is None:
                self.log.info("env", f"built meanwhile by another run; reusing {env}")
                return EnvOutcome(Outcome.HIT)
            outcome = self._quarantine(env, damage)
            self._build(request)
        if self.settings.bytecode is Bytecode.BACKGROUND:
            done = self.layout.state / f"{key}.compiled"
            compile_in_background(env, lease, self.log, done=done)
        return outcome

    def _recheck(self, key: str, damage: Damage) -> Damage | None:
        # Someone may have built it while we waited. If that was a thread of this process, its
        # post-build verification (moments ago, same folder) stands for ours.
        if damage.missing and _published_here(self.layout.env(key), key):
            return None
        return self.check(key)

    def _quarantine(self, env: Path, damage: Damage) -> EnvOutcome:
        if damage.missing:
            self.log.info("env", f"no environment for this lock yet; building {env.name[:12]}")
            return EnvOutcome(Outcome.BUILT)
        bad = self.layout.quarantine_path(env)
        env.rename(bad)
        self.log.warning("heal", f"environment {env.name[:12]} is damaged: {damage}")
        self.log.warning("heal", f"moved it aside to {bad.name}; rebuilding")
        return EnvOutcome(Outcome.HEALED, str(damage))

    def _build(self, request: BuildRequest) -> None:
        key = request.key.key
        Builder(self.layout, self.settings, self.log, self.cancel).build(request)
        damage_marker(self.layout, key).unlink(missing_ok=True)
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
