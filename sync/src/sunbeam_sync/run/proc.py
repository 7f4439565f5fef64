"""Run git and uv as child processes: stream their output into the log, stop them on cancel."""

from __future__ import annotations

import ctypes
import functools
import os
import re
import select
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sunbeam_contracts.processes import default_signals_in_child, stop_groups
from sunbeam_sync.errors import Cancelled
from sunbeam_sync.run.log import SyncLog

_LINE_SPLIT = re.compile(rb"\r\n|\n|\r")
_PR_SET_PDEATHSIG = 1
# Resolved once, here: after fork only this already-loaded function is called (no dlopen).
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent(parent: int) -> None:
    """preexec_fn: the child gets SIGKILL when the thread that started it dies (even by kill -9),
    and default signal dispositions whatever ours are.

    Our children run in their own session (so a cancel can stop their whole tree), which also
    means a signal to our process group never reaches them: without this, a killed sync leaves
    `uv sync` writing into a folder the next builder deletes. A process started in the background
    ignores SIGINT and SIGQUIT, and would pass that on to git and uv.
    """
    default_signals_in_child()
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent (pid `parent`) died before prctl took effect
        os._exit(1)


@dataclass
class ProcResult:
    returncode: int
    lines: list[str]

    @property
    def tail(self) -> str:
        return "\n".join(self.lines[-15:])

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def run(
    cmd: Sequence[str],
    *,
    log: SyncLog,
    tag: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    cancel: threading.Event | None = None,
    quiet: bool = False,
    hide: Callable[[str], bool] | None = None,
) -> ProcResult:
    """Run `cmd`, logging each output line as `[tag] line` (unless quiet); raise Cancelled on cancel.

    Lines for which `hide` is true are kept in the result but not logged.

    The child gets its own session so a cancel (or our own death) takes its whole tree down.
    """
    child = subprocess.Popen(
        list(cmd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=str(cwd) if cwd else None,
        start_new_session=True,
        preexec_fn=functools.partial(die_with_parent, os.getpid()),
    )
    return supervise(child, log=log, tag=tag, cancel=cancel, quiet=quiet, hide=hide)


class _Lines:
    """The redacted output lines of a child, kept (the last `keep`) and logged as they come."""

    def __init__(
        self, log: SyncLog, tag: str, quiet: bool, hide: Callable[[str], bool] | None = None
    ) -> None:
        self.log, self.tag, self.quiet, self.hide = log, tag, quiet, hide
        keep = 2000
        self.lines: deque[str] = deque(maxlen=keep)
        self._guard = threading.Lock()

    def pump(self, stream: IO[bytes]) -> None:
        buf = b""
        for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
            buf += chunk
            *done, buf = _LINE_SPLIT.split(buf)
            for raw in done:
                self._emit(raw)
        if buf:
            self._emit(buf)

    def _emit(self, raw: bytes) -> None:
        line = self.log.redact(raw.decode(errors="replace").rstrip())
        if not line.strip():
            return
        with self._guard:
            self.lines.append(line)
        if not self.quiet and not (self.hide and self.hide(line)):
            self.log.logger.info("[%s] %s", self.tag, line)


def _copy(stream: IO[bytes], sink: IO[bytes]) -> None:
    for chunk in iter(lambda: stream.read(1 << 16), b""):
        sink.write(chunk)


def supervise(
    child: subprocess.Popen[bytes],
    *,
    log: SyncLog,
    tag: str,
    cancel: threading.Event | None = None,
    quiet: bool = False,
    sink: IO[bytes] | None = None,
    hide: Callable[[str], bool] | None = None,
) -> ProcResult:
    """Wait for a started child: log its output (stdout into `sink` if given), kill it on cancel."""
    lines = _Lines(log, tag, quiet, hide)
    readers = []
    if child.stdout is not None:
        target = (lambda: _copy(child.stdout, sink)) if sink else (lambda: lines.pump(child.stdout))  # type: ignore[arg-type]
        readers.append(threading.Thread(target=target, daemon=True))
    if child.stderr is not None:
        readers.append(threading.Thread(target=lines.pump, args=(child.stderr,), daemon=True))
    for reader in readers:
        reader.start()
    try:
        _wait(child, lambda: cancel is not None and cancel.is_set(), tag)
    except BaseException:
        kill(child)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=5)
    return ProcResult(child.returncode, list(lines.lines))


def _wait(child: subprocess.Popen[bytes], cancelled: Callable[[], bool], tag: str) -> None:
    """Wait for the child's exit, looking at `cancelled` every 0.1 s.

    Through a pidfd where there is one: the wait ends the moment the child exits. (Popen.wait
    with a timeout sleeps in steps of up to 50 ms, and a hit runs several short git commands.)
    """
    try:
        pidfd = os.pidfd_open(child.pid)
    except (AttributeError, OSError):  # not Linux >= 5.3: poll with Popen's own timeouts
        pidfd = None
    try:
        while True:
            if pidfd is not None:
                select.select([pidfd], [], [], 0.1)
            try:
                child.wait(timeout=0 if pidfd is not None else 0.1)
                return
            except subprocess.TimeoutExpired:
                if cancelled():
                    raise Cancelled(f"cancelled while running {tag}") from None
    finally:
        if pidfd is not None:
            os.close(pidfd)


def kill(child: subprocess.Popen[bytes]) -> None:
    """Stop the child's whole process group: TERM, then KILL after 3 s."""
    if child.poll() is not None:
        return
    stop_groups([child.pid], grace=3.0, gone=lambda: child.poll() is not None, poll=0.05)
    child.wait()
