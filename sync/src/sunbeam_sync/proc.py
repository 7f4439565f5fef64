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
    keep: int = 2000,
) -> ProcResult:
    """Run `cmd`, logging each output line as `[tag] line` (unless quiet); raise Cancelled on cancel.

    The child gets its own session so a cancel (or our own death) takes its whole tree down.
    """
    proc = subprocess.Popen(
        list(cmd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=str(cwd) if cwd else None,
        start_new_session=True,
    )
    lines: deque[str] = deque(maxlen=keep)

    def pump() -> None:
        assert proc.stdout is not None
        buf = b""
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):  # type: ignore[union-attr]
            buf += chunk
            *done, buf = _LINE_SPLIT.split(buf)
            for raw in done:
                _emit(raw)
        if buf:
            _emit(buf)

    def _emit(raw: bytes) -> None:
        line = log.redact(raw.decode(errors="replace").rstrip())
        if not line.strip():
            return
        lines.append(line)
        if not quiet:
            log.logger.info("[%s] %s", tag, line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        while True:
            try:
                proc.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel.is_set():
                    _kill(proc)
                    raise Cancelled(f"cancelled while running {tag}") from None
    except BaseException:
        _kill(proc)
        raise
    finally:
        reader.join(timeout=5)
    return ProcResult(proc.returncode, list(lines))


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=3)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
