"""What `prepare` hands back: the result, and the leases that keep `gc` away until released."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from sunbeam_sync.cache.locks import FileLock, Releasable


@dataclass(kw_only=True)
class PrepareResult:
    repo: str
    ref: str
    commit: str
    checkout: str  # the project folder inside the commit's checkout
    env_key: str
    env: str
    python: str
    cache_hit: bool
    built: bool
    healed: bool
    heal_reason: str | None = None
    link_mode: str
    pythonpath: list[str]
    timings: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (`sunbeam-sync prepare --json` prints it)."""
        return asdict(self)


class EnvLease(Releasable):
    """A ready environment (`result`) plus the shared leases that keep `gc` away from it.

    Use it as a context manager, or call `release()` when the run that uses the env is over.
    """

    def __init__(self) -> None:
        self._result: PrepareResult | None = None
        self._leases: list[FileLock] = []
        self._env_lease: FileLock | None = None

    @property
    def result(self) -> PrepareResult:
        if self._result is None:
            raise RuntimeError("the environment is not ready yet")
        return self._result

    def hold(self, lock: FileLock, *, env: bool = False) -> FileLock:
        """Keep `lock` until release; `env`: it is the env's own lease (`env_lease_fd`)."""
        self._leases.append(lock)
        if env:
            self._env_lease = lock
        return lock

    def env_lease_fd(self) -> int | None:
        """The open file of the env's lease, for a process that outlives this one to inherit
        (its flock lasts while any holder keeps the file open); None before the env is leased."""
        lease = self._env_lease
        return lease.fileno() if lease is not None and lease.held else None

    def ready(self, result: PrepareResult) -> EnvLease:
        self._result = result
        return self

    def keep_across_exec(self) -> None:
        """Let the leases outlive an exec: the flocks are on open files (opened close-on-exec),
        so a process that execs the flow keeps `gc` away until the flow itself exits."""
        for lease in self._leases:
            os.set_inheritable(lease.fileno(), True)

    def release(self) -> None:
        for lease in self._leases:
            lease.release()
        self._leases = []
        self._env_lease = None
