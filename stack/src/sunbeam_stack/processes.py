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

from sunbeam_stack.errors import StackError
from sunbeam_stack.state import start_time


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

    def stop(self) -> None:
        """SIGTERM to the child's group, SIGKILL after `stop_timeout`; never raises, never prints."""
        if not self.running():
            return
        assert self.proc is not None
        # Helpers that left the group (the sync's detached bytecode compiler) are stopped too.
        strays = descendants(self.proc.pid)
        _killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            _killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        kill_all(strays)


def kill_all(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def stop_groups(pids: list[int], timeout: float = 30.0) -> None:
    """Stop processes that are not our children (a killed `sunbeam up`'s): their groups get
    SIGTERM, then SIGKILL for whatever is left after `timeout`."""
    strays: set[int] = set()
    for pid in pids:
        strays |= descendants(pid)
        _killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(start_time(pid) is not None for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        _killpg(pid, signal.SIGKILL)
    kill_all(strays)


def descendants(pid: int) -> set[int]:
    """Every live descendant of `pid` (Linux /proc; empty where there is none)."""
    parents: dict[int, int] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return set()
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        kids = {p for p, parent in parents.items() if parent == current}
        found |= kids
        todo.extend(kids)
    return found


def _killpg(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


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
