"""One managed child process for every server and command the tests start.

Each process gets its own session (so a stop reaches its whole process group), a log file, and
waits that end on a real condition — a health answer, a log line — within a deadline, failing
early with the log's tail when the process exits instead. `start(background=True)` starts it as a
shell's background job or `nohup` would: SIGINT, SIGQUIT and SIGHUP ignored.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sunbeam_contracts.processes import signal_group

# What `nohup cmd &` in a script leaves a command: the shell's background job ignores SIGINT and
# SIGQUIT, nohup adds SIGHUP.
BACKGROUND_IGNORED = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)


class ProcessFailed(AssertionError):
    """A managed process exited, or never got ready, while a test waited on it."""


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def ignored_signals(pid: int) -> set[signal.Signals]:
    """The signals process `pid` ignores (SigIgn in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            mask = int(line.split()[1], 16)
            return {s for s in signal.Signals if mask & (1 << (s - 1))}
    raise AssertionError(f"no SigIgn line for pid {pid}")


def _ignore_as_in_background() -> None:
    for signum in BACKGROUND_IGNORED:
        signal.signal(signum, signal.SIG_IGN)


def wait_for(condition: Callable[[], bool], what: str, timeout: float, poll: float = 0.2) -> None:
    """Poll `condition` until it holds; ProcessFailed naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ProcessFailed(f"{what} did not happen within {timeout:.0f}s")
        time.sleep(poll)


@dataclass
class ManagedProcess:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _reader: threading.Thread | None = field(default=None, init=False)
    _cut: threading.Event = field(default_factory=threading.Event, init=False)

    def start(self, *, pipe: bool = False, background: bool = False) -> ManagedProcess:
        """Start it; with `pipe`, its output goes through a pipe (as into `| tee`) that a
        thread copies to the log until `cut_pipe()`; with `background`, as `nohup … &` would
        (BACKGROUND_IGNORED ignored)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                list(self.argv),
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipe else log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_ignore_as_in_background if background else None,
            )
        if pipe:
            self._reader = threading.Thread(target=self._copy_pipe, daemon=True)
            self._reader.start()
        return self

    def _copy_pipe(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with self.log_path.open("ab") as log:
            while not self._cut.is_set():
                if not select.select([fd], [], [], 0.1)[0]:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    return
                log.write(chunk)
                log.flush()

    def cut_pipe(self) -> None:
        """Close the pipe's only reader: from now on every write to stdout fails (EPIPE)."""
        assert self._reader is not None and self.proc is not None and self.proc.stdout
        self._cut.set()
        self._reader.join(timeout=10)
        self.proc.stdout.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float) -> float:
        """Wait for `ready()`; fails early if the process exits. Returns the seconds it took."""
        started = time.monotonic()
        while not ready():
            if not self.running():
                raise ProcessFailed(f"{self.name} exited before {what}:\n{self.tail()}")
            if time.monotonic() - started > timeout:
                raise ProcessFailed(f"{self.name}: no {what} after {timeout:.0f}s:\n{self.tail()}")
            time.sleep(0.2)
        return time.monotonic() - started

    def wait_healthy(self, url: str, timeout: float) -> float:
        return self.wait_until(lambda: http_ok(url), f"200 from {url}", timeout)

    def wait_for_line(self, text: str, timeout: float) -> float:
        return self.wait_until(lambda: text in self.tail(10**9), f"log line {text!r}", timeout)

    def send(self, signum: int, *, group: bool = False) -> None:
        if not self.running():
            return
        if group:
            signal_group(self.pid, signum)
        else:
            os.kill(self.pid, signum)  # running: not reaped, so the pid is still ours

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(
        self, timeout: float = 30, *, signum: int = signal.SIGTERM, group: bool = True
    ) -> int | None:
        """Ask politely (`signum`, to the group unless told), then SIGKILL the group."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.send(signum, group=group)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            signal_group(self.pid, signal.SIGKILL)
            return self.proc.wait()


def alive(pid: int) -> bool:
    """Is process `pid` running (a zombie, dead but not yet reaped, is not)?"""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    """Process `pid`'s command line, its arguments joined by spaces."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
