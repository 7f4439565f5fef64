"""`list`, `verify` and `gc` over the cache folder."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from pathlib import Path

from pydantic import BaseModel, Field

from sunbeam_contracts.processes import pid_alive
from sunbeam_sync.cache.files import TMP_PREFIX, disk_usage, make_deletable, remove_tree
from sunbeam_sync.cache.layout import BAD_PREFIX, CacheLayout, repo_id
from sunbeam_sync.cache.locks import FileLock
from sunbeam_sync.cache.usage import read_usage
from sunbeam_sync.envs.verify import verify_env, write_damage
from sunbeam_sync.settings import SyncSettings

_KEY = re.compile(r"^[0-9a-f]{64}$")
RECENT_DAYS = 7  # gc keeps the checkout of the newest commit of every ref used this recently
_TMP_PID = re.compile(r"-(\d+)-[0-9a-f]{8}$")


class EnvInfo(BaseModel):
    key: str
    path: str
    size_bytes: int  # what evicting it would free: files shared by hardlinks are not counted
    apparent_bytes: int = 0  # the size of all its files (what `du --apparent-size` shows)
    last_used: float | None
    last_used_iso: str | None
    in_use: bool
    refs: list[str]
    commits: list[str]


class VerifyReport(BaseModel):
    key: str
    ok: bool
    reason: str | None = None


class Removed(BaseModel):
    kind: str  # env | temporary | quarantined | checkout
    name: str
    bytes: int
    why: str = ""


class GcReport(BaseModel):
    dry_run: bool
    removed: list[Removed] = Field(default_factory=list)
    kept_in_use: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)  # could not be deleted (permissions)
    kept_recent: list[str] = Field(default_factory=list)  # checkouts of refs' newest commits
    bytes_reclaimed: int = 0
    bytes_remaining: int = 0


def _layout(settings: SyncSettings) -> CacheLayout:
    return CacheLayout.open(settings.cache_dir)


def _env_keys(layout: CacheLayout) -> list[str]:
    return sorted(p.name for p in layout.envs.iterdir() if _KEY.match(p.name))


def _in_use(lock: FileLock) -> bool:
    if lock.try_acquire():
        lock.release()
        return False
    return True


def list_envs(settings: SyncSettings) -> list[EnvInfo]:
    layout = _layout(settings)
    out = []
    for key in _env_keys(layout):
        usage = read_usage(layout, key)
        last = usage.get("last_used")
        own, apparent = disk_usage(layout.env(key))
        out.append(
            EnvInfo(
                key=key,
                path=str(layout.env(key)),
                size_bytes=own,
                apparent_bytes=apparent,
                last_used=last,
                last_used_iso=dt.datetime.fromtimestamp(last, dt.UTC).isoformat(timespec="seconds")
                if last
                else None,
                in_use=_in_use(layout.use_lock(key, shared=False)),
                refs=list(usage.get("refs", {})),
                commits=list(usage.get("commits", {})),
            )
        )
    return sorted(out, key=lambda e: e.last_used or 0, reverse=True)


def verify_all(settings: SyncSettings, *, deep: bool = False) -> list[VerifyReport]:
    """Check every env; a damaged one is flagged so that its next use rebuilds it."""
    layout = _layout(settings)
    report = []
    for key in _env_keys(layout):
        damage = verify_env(layout.env(key), key, deep=deep, quick=False)  # everything, always
        if damage is not None:
            write_damage(layout, key, damage)
        report.append(
            VerifyReport(key=key, ok=damage is None, reason=str(damage) if damage else None)
        )
    return report


def collect_garbage(
    settings: SyncSettings, *, max_bytes: int | None = None, dry_run: bool = False
) -> GcReport:
    gc = _Collector(_layout(settings), dry_run)
    gc.temporaries()
    gc.quarantined()
    envs = list_envs(settings)
    total = sum(e.size_bytes for e in envs)
    if max_bytes is not None:
        total = gc.evict(envs, total, max_bytes)
    gc.checkouts()  # after eviction: an evicted env's refs no longer keep their checkouts
    gc.report.bytes_remaining = total
    return gc.report


class _Collector:
    def __init__(self, layout: CacheLayout, dry_run: bool) -> None:
        self.layout = layout
        self.dry_run = dry_run
        self.report = GcReport(dry_run=dry_run)

    def drop(self, kind: str, path: Path, name: str, why: str) -> None:
        if not self.dry_run:
            make_deletable(path)  # an unreadable folder inside is neither measured nor deleted
        size = disk_usage(path)[0]
        if not self.dry_run:
            # Rename first so a half-deleted folder never sits under a name anyone trusts.
            doomed = path
            if not path.name.startswith(f"{TMP_PREFIX}gc-"):
                doomed = path.with_name(f"{TMP_PREFIX}gc-{path.name}-{os.getpid()}-00000000")
                try:
                    path.rename(doomed)
                except OSError:
                    doomed = path
            if not remove_tree(doomed):
                self.report.failed.append(name)  # its bytes were not freed: not counted
                return
        self.report.removed.append(Removed(kind=kind, name=name, bytes=size, why=why))
        self.report.bytes_reclaimed += size

    def temporaries(self) -> None:
        layout = self.layout
        # Leftovers of killed builds: an env temporary whose key's build lock is free is abandoned.
        for tmp in sorted(layout.envs.glob(f"{TMP_PREFIX}*")):
            key = tmp.name[len(TMP_PREFIX) :][:64]
            lock = layout.build_lock(key)
            if not _KEY.match(key) or lock.try_acquire():
                try:
                    self.drop("temporary", tmp, tmp.name, "left by a build no process runs")
                finally:
                    lock.release()
        others = sorted(layout.checkouts.glob(f"*/{TMP_PREFIX}*")) + sorted(
            layout.git.glob(f"{TMP_PREFIX}*")
        )
        for tmp in others:
            m = _TMP_PID.search(tmp.name)
            if m is None or not pid_alive(int(m.group(1))):
                self.drop("temporary", tmp, tmp.name, "its process is gone")
            elif _age(tmp) > 3600:
                self.drop("temporary", tmp, tmp.name, "older than an hour")

    def quarantined(self) -> None:
        for bad in sorted(self.layout.envs.glob(f"{BAD_PREFIX}*")):
            key = bad.name[len(BAD_PREFIX) :][:64]
            use = self.layout.use_lock(key, shared=False)
            # A quarantined env may still serve a run that started before it was moved aside.
            if use.try_acquire():
                try:
                    self.drop("quarantined", bad, bad.name, "a damaged env no run uses")
                finally:
                    use.release()
            else:
                self.report.kept_in_use.append(bad.name)

    def checkouts(self) -> None:
        evicted = {r.name for r in self.report.removed if r.kind == "env"}
        keep = _recent_heads(self.layout, skip=evicted)
        found = self.layout.checkouts.glob("*/*")
        for checkout in sorted(p for p in found if not p.name.startswith(".")):
            name = f"{checkout.parent.name}/{checkout.name[:12]}"
            refs = keep.get((checkout.parent.name, checkout.name))
            if refs:
                self.report.kept_recent.append(f"{name} (newest commit of {', '.join(refs)})")
                continue
            lock = self.layout.checkout_lock(checkout.parent.name, checkout.name, shared=False)
            if lock.try_acquire():
                try:
                    why = f"not the newest commit of any ref used in the last {RECENT_DAYS} days"
                    self.drop("checkout", checkout, name, why)
                finally:
                    lock.release()

    def evict(self, envs: list[EnvInfo], total: int, max_bytes: int) -> int:
        """Drop least-recently-used idle envs until `total` fits `max_bytes`; the new total."""
        for env in sorted(envs, key=lambda e: e.last_used or 0):
            if total <= max_bytes:
                break
            if self._evict_one(env):
                total -= env.size_bytes
            else:
                self.report.kept_in_use.append(env.key)
        return total

    def _evict_one(self, env: EnvInfo) -> bool:
        build = self.layout.build_lock(env.key)
        use = self.layout.use_lock(env.key, shared=False)
        if not build.try_acquire():
            return False
        try:
            if not use.try_acquire():
                return False
            try:
                when = env.last_used_iso or "never"
                self.drop(
                    "env", Path(env.path), env.key, f"least recently used ({when}), over the budget"
                )
                self.layout.damage_marker(env.key).unlink(missing_ok=True)
                return True
            finally:
                use.release()
        finally:
            build.release()


def _recent_heads(layout: CacheLayout, skip: set[str]) -> dict[tuple[str, str], list[str]]:
    """(repo folder, commit) → refs whose newest use, within RECENT_DAYS, was at that commit.

    Envs in `skip` (evicted by this gc) do not count: their refs are not kept warm any more.
    """
    newest: dict[tuple[str, str], tuple[float, str]] = {}
    since = time.time() - RECENT_DAYS * 86400
    for key in set(_env_keys(layout)) - skip:
        usage = read_usage(layout, key)
        rid = repo_id(usage["repo"]) if usage.get("repo") else ""
        for ref, commit in usage.get("heads", {}).items():
            used = float(usage.get("refs", {}).get(ref, 0))
            if used >= since and used > newest.get((rid, ref), (0.0, ""))[0]:
                newest[(rid, ref)] = (used, commit)
    keep: dict[tuple[str, str], list[str]] = {}
    for (rid, ref), (_used, commit) in sorted(newest.items()):
        keep.setdefault((rid, commit), []).append(ref)
    return keep


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0
