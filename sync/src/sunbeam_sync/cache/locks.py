"""flock-based locks. The OS drops them when their holder dies, so nothing is ever unlocked by hand."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self

from sunbeam_sync.errors import Cancelled, LockTimeout
from sunbeam_sync.run.log import SyncLog

_POLL = 0.05
_REPORT_EVERY = 5.0


class Releasable(ABC):
    """A context manager whose exit is `release()`: a lock, or the leases a result holds."""

    @abstractmethod
    def release(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class FileLock(Releasable):
    """An exclusive or shared flock on `path`, acquired with a bounded, reported wait."""

    def __init__(self, path: Path, *, shared: bool = False, what: str = "") -> None:
        self.path = path
        self.shared = shared
        self.what = what or path.name
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        if not self.shared:
            self._write_owner()
        return True

    def acquire(
        self,
        *,
        timeout: float,
        log: SyncLog | None = None,
        cancel: threading.Event | None = None,
    ) -> FileLock:
        start = time.monotonic()
        next_report = start
        while not self.try_acquire():
            waited = time.monotonic() - start
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"cancelled while waiting for {self.what}")
            if waited >= timeout:
                raise LockTimeout(
                    f"gave up after {waited:.0f}s waiting for {self.what} ({self.owner()}); "
                    "if that process is stuck, stop it, or raise SUNBEAM_LOCK_TIMEOUT"
                )
            if log is not None and time.monotonic() >= next_report:
                log.info("lock", f"waiting for {self.what}, held by {self.owner()} ({waited:.0f}s)")
                next_report = time.monotonic() + _REPORT_EVERY
            time.sleep(_POLL)
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing drops the flock

    def fileno(self) -> int:
        if self._fd is None:
            raise RuntimeError("lock not held")
        return self._fd

    def _write_owner(self) -> None:
        assert self._fd is not None
        data = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data.encode(), 0)

    def owner(self) -> str:
        try:
            info = json.loads(self.path.read_text() or "{}")
            return f"pid {info['pid']} on {info['host']}"
        except (OSError, ValueError, KeyError):
            return "another process"

    def __del__(self) -> None:
        self.release()
