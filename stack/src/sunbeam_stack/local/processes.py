"""Child processes with their own log files, started and stopped as one group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sunbeam_contracts.processes import descendants, stop_groups
from sunbeam_stack.errors import StackError


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log: Path
    stop_timeout: float = 30.0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    started_at: float = field(default=0.0, init=False)  # time.monotonic() at start

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.started_at = time.monotonic()
        with self.log.open("ab") as out:
            # Own session: a terminal's Ctrl-C reaches `sunbeam up` only, which then stops the
            # children in order (API and agent before the server they talk to).
            self.proc = subprocess.Popen(
                list(self.argv),
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> bool:
        """SIGTERM to the child's group, SIGKILL after `stop_timeout`; never raises, never prints.

        Returns False when it took SIGKILL.
        """
        if not self.running():
            return True
        proc = self.proc
        assert proc is not None
        # Helpers that left the group (the sync's detached bytecode compiler) are stopped too.
        strays = descendants(proc.pid)
        graceful = stop_groups(
            [proc.pid], grace=self.stop_timeout, gone=lambda: proc.poll() is not None
        )
        proc.wait()
        kill_all(strays)
        return graceful


def kill_all(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def wait_until(
    child: Child,
    what: str,
    ready: Callable[[], bool],
    timeout: float,
    say: Callable[[str], None],
) -> float:
    """Wait for `ready()`, failing early if the child exits; returns the seconds it took."""
    started = time.monotonic()
    next_note = started + 5
    while not ready():
        if not child.running():
            raise StackError(f"{child.name} exited during start-up; its log ends:\n{child.tail()}")
        now = time.monotonic()
        if now - started > timeout:
            raise StackError(f"{child.name}: {what} not ready after {timeout:.0f}s ({child.log})")
        if now >= next_note:
            say(f"  … waiting for {what} ({now - started:.0f}s)")
            next_note = now + 5
        time.sleep(0.3)
    return time.monotonic() - started
