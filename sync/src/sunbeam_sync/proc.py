"""Run git and uv as child processes: stream their output into the log, stop them on cancel."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sunbeam_sync.errors import Cancelled
from sunbeam_sync.logs import SyncLog

_LINE_SPLIT = re.compile(rb"\r\n|\n|\r")


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
) -> ProcResult:
    """Run `cmd`, logging each output line as `[tag] line` (unless quiet); raise Cancelled on cancel.

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
    )
    return supervise(child, log=log, tag=tag, cancel=cancel, quiet=quiet)


class _Lines:
    """The redacted output lines of a child, kept (the last `keep`) and logged as they come."""

    def __init__(self, log: SyncLog, tag: str, quiet: bool, keep: int = 2000) -> None:
        self.log, self.tag, self.quiet = log, tag, quiet
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
        if not self.quiet:
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
) -> ProcResult:
    """Wait for a started child: log its output (stdout into `sink` if given), kill it on cancel."""
    lines = _Lines(log, tag, quiet)
    readers = []
    if child.stdout is not None:
        target = (lambda: _copy(child.stdout, sink)) if sink else (lambda: lines.pump(child.stdout))  # type: ignore[arg-type]
        readers.append(threading.Thread(target=target, daemon=True))
    if child.stderr is not None:
        readers.append(threading.Thread(target=lines.pump, args=(child.stderr,), daemon=True))
    for reader in readers:
        reader.start()
    try:
        while True:
            try:
                child.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"cancelled while running {tag}") from None
    except BaseException:
        kill(child)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=5)
    return ProcResult(child.returncode, list(lines.lines))


def kill(child: subprocess.Popen[bytes]) -> None:
    """Stop the child's whole process group: TERM, then KILL after 3 s."""
    if child.poll() is not None:
        return
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=3)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
