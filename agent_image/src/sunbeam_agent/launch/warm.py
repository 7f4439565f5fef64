"""Warm interpreters: a run on a cached env starts in a process forked from one that has
imported Prefect already, not in a new interpreter that imports it (`_warm_main.py`).

`run_warm` is how the launcher starts the flow when the setting allows it: it finds the warm
interpreter of this env and these Prefect settings (or starts one and waits for it), hands it
the run's stdin, stdout and stderr, directory and environment, forwards the signals the launcher
gets to the flow's process, and returns that process's exit. `None` means no warm interpreter
took the run (turned off, a host that cannot, another run starting the same one at this moment,
an interpreter that failed to import Prefect): the launcher starts the engine cold, as before.

The first run of a cached env on a host starts cold and starts the env's interpreter beside
it, which imports once that run has ended (or after 30 s): two imports at once on a small host
slow both. A run that built its env does not: most new locks (a branch's) run once or twice,
and an import nobody uses would slow the runs starting meanwhile. Every later run there, while the interpreter lives, skips the import (a run that
comes while it imports waits for it; one that comes before starts cold). A prewarm (`sync_only`) starts it too, so the first real run of a
pushed branch is warm.
Interpreters live in one private folder per user (`SUNBEAM_WARM_DIR`), at most
`SUNBEAM_WARM_INTERPRETERS` per host (the least recently used one is stopped for a new one),
each until idle for `SUNBEAM_WARM_IDLE_SECONDS` or its worker is gone.

Standard library only, like the rest of the launcher.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import BinaryIO

from sunbeam_agent.errors import AgentError

COUNT_ENV = "SUNBEAM_WARM_INTERPRETERS"
IDLE_ENV = "SUNBEAM_WARM_IDLE_SECONDS"
DIR_ENV = "SUNBEAM_WARM_DIR"
COUNT = 2
IDLE_SECONDS = 900.0
AWAIT_SECONDS = 120.0  # the longest a run waits on an interpreter another process starts

# What differs from one run to the next, and so is not part of an interpreter's identity: the
# child gets it from the request (PYTHONPATH becomes its sys.path there).
_PER_RUN_PREFIXES = ("PREFECT__", "SUNBEAM_")
_PER_RUN = frozenset({"PYTHONPATH"})
# Signals the launcher passes on to the flow's process, as if the worker had sent them there.
FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
_HEADER = struct.Struct("!cI")
# The program is read from the agent's install by path (a short command line in `ps`), not run
# as a script: a script's folder would come first on sys.path, the agent's modules with it.
_RUN_FILE = "import sys; f = sys.argv.pop(1); exec(compile(open(f).read(), f, 'exec'))"


class WarmError(AgentError):
    """A warm interpreter ended while its run was running; the message says so."""


@dataclass(frozen=True)
class WarmSettings:
    # How many warm interpreters a host keeps (one per env and Prefect settings); 0: none.
    count: int = COUNT
    # How long an unused one lives.
    idle_seconds: float = IDLE_SECONDS
    # Their sockets and locks; default: a private folder in the system's temporary folder.
    folder: Path | None = None

    @property
    def where(self) -> Path:
        return self.folder or Path(tempfile.gettempdir()) / f"sunbeam-warm-{os.getuid()}"


@dataclass(frozen=True)
class WarmRun:
    """Where and what to run: the env's interpreter, its folder (for its identity), the run's
    environment and directory, the engine program, and the env's lease to inherit."""

    python: str
    env_dir: str
    env: Mapping[str, str]
    cwd: str
    program: str
    lease_fd: int | None


def warm_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The part of a run's environment a warm interpreter is started with (and named after)."""
    return {
        name: value
        for name, value in env.items()
        if name not in _PER_RUN and not name.startswith(_PER_RUN_PREFIXES)
    }


def address(folder: Path, run: WarmRun) -> Path:
    """The socket of the interpreter for this env (this build of it: a healed env is a new
    folder) and these settings. A digest: the environment holds secrets."""
    built = os.stat(run.env_dir)
    identity = [run.python, built.st_dev, built.st_ino, sorted(warm_environment(run.env).items())]
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]
    return folder / f"{digest}.sock"


def private_folder(folder: Path) -> bool:
    """Create the folder (0700); False unless it is a folder only this user can enter."""
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700, parents=True)
    info = folder.lstat()
    return (
        folder.is_dir()
        and not folder.is_symlink()
        and info.st_uid == os.getuid()
        and info.st_mode & 0o077 == 0
    )


def run_warm(
    settings: WarmSettings,
    run: WarmRun,
    *,
    started: Callable[[int], None],
    stopping: Callable[[], bool],
    start: bool = True,
) -> int | None:
    """Run the flow in a warm interpreter: its exit code (negative: killed by that signal), or
    None when none took it (then, with `start`, one is started for later runs). `started(pid)`
    is told the flow's process; `stopping()` says the
    launcher was asked to stop before the flow started (the flow is then stopped at once)."""
    folder = settings.where
    if settings.count <= 0 or not private_folder(folder):
        return None
    where = address(folder, run)
    conn = _connect(where)
    if conn is None:
        holder = _holder(_lock_of(where))
        if holder is None:
            # None yet: this run starts cold, and the interpreter starts beside it, importing
            # once this run has ended (waiting for it would cost this run more than a cold
            # start; importing at the same time makes both slower).
            if start:
                _start(settings, where, run, after=os.getpid())
            return None
        if holder.state != "importing":
            return None  # it waits for a cold start to end first: this one starts cold too
        conn = _await(where)  # sooner than a cold start
        if conn is None:
            return None
    with conn, conn.makefile("rb") as replies:
        pid = _request(conn, replies, run)
        if pid is None:
            return None
        started(pid)
        return _wait(replies, pid, stopping)


def start_warm(settings: WarmSettings, run: WarmRun) -> None:
    """Start the interpreter of `run` if none is there, without waiting for it (a prewarm)."""
    folder = settings.where
    if settings.count <= 0 or not private_folder(folder):
        return
    where = address(folder, run)
    conn = _connect(where)
    if conn is not None:
        conn.close()
        return
    if _holder(_lock_of(where)) is None:
        _start(settings, where, run, after=0)


def _connect(where: Path) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(where))
    except OSError:  # none there, or a dead one's socket
        conn.close()
        return None
    return conn


def _lock_of(where: Path) -> Path:
    """The lock an interpreter holds for life (`_warm_main._own_lock`)."""
    return where.with_name(where.name + ".lock")


def _await(where: Path) -> socket.socket | None:
    """The interpreter another process is starting at `where`, once it listens; None if it
    gave up. It says nothing to us, so we look (its import takes seconds; a look, microseconds)."""
    lock = _lock_of(where)
    deadline = time.monotonic() + AWAIT_SECONDS
    while time.monotonic() < deadline:
        conn = _connect(where)
        if conn is not None or _holder(lock) is None:
            return conn
        time.sleep(0.05)
    return None


def _start(settings: WarmSettings, where: Path, run: WarmRun, *, after: int) -> None:
    """Start an interpreter at `where` (after process `after` ends, at most 30 s; 0: at once)."""
    _make_room(where.parent, settings.count)
    keep = () if run.lease_fd is None else (run.lease_fd,)
    command = [run.python, "-c", _RUN_FILE, _program_file()]
    arguments = [str(where), repr(settings.idle_seconds), str(os.getppid()), str(after)]
    with contextlib.suppress(OSError):  # then runs start cold, as before
        subprocess.Popen(
            [*command, *arguments],
            env=warm_environment(run.env),
            cwd=where.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not stopped with the run's process group
            pass_fds=keep,
        )


def _program_file() -> str:
    return str(resources.files("sunbeam_agent.launch").joinpath("_warm_main.py"))


def _make_room(folder: Path, count: int) -> None:
    """Stop the least recently used interpreters so that a new one makes at most `count`."""
    live = live_interpreters(folder)
    for holder in live[: max(0, len(live) - count + 1)]:
        with contextlib.suppress(OSError):
            os.kill(holder.pid, signal.SIGTERM)  # it stops taking runs and ends after its own


@dataclass(frozen=True, order=True)
class Holder:
    """A running interpreter, as its lock file says: when last used, its pid, what it does."""

    last_used: float
    pid: int
    state: str


def live_interpreters(folder: Path) -> list[Holder]:
    """Each interpreter running in `folder`, least recently used first."""
    holders = (_holder(lock) for lock in folder.glob("*.sock.lock"))
    return sorted(holder for holder in holders if holder is not None)


def _holder(lock: Path) -> Holder | None:
    """The interpreter holding `lock`, or None if none does."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid, _, state = os.pread(fd, 64, 0).decode(errors="replace").partition(" ")
        return Holder(os.fstat(fd).st_mtime, int(pid), state) if pid.isdigit() else None
    finally:
        os.close(fd)
    return None


def _request(conn: socket.socket, replies: BinaryIO, run: WarmRun) -> int | None:
    body = json.dumps({"cwd": run.cwd, "env": dict(run.env), "program": run.program}).encode()
    with contextlib.ExitStack() as opened:
        fds = [_open_or_null(fd, opened) for fd in (0, 1, 2)]
        try:
            socket.send_fds(conn, [_HEADER.pack(b"R", len(body))], fds)
            conn.sendall(body)
        except OSError:
            return None
    reply = _line(replies)
    return int(reply["pid"]) if reply and "pid" in reply else None


def _open_or_null(fd: int, opened: contextlib.ExitStack) -> int:
    """`fd`, or /dev/null where the launcher was started without it."""
    try:
        os.fstat(fd)
    except OSError:
        null = os.open(os.devnull, os.O_RDWR)
        opened.callback(os.close, null)
        return null
    return fd


def _wait(replies: BinaryIO, pid: int, stopping: Callable[[], bool]) -> int:
    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    try:
        if stopping():  # asked before the flow started: it stops as it would have
            forward(signal.SIGTERM, None)
        reply = _line(replies)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not reply or "status" not in reply:
        raise WarmError(
            f"the warm interpreter running this flow (process {pid}) ended during the run; "
            "it was killed: run the flow again (it starts cold if none is left)"
        )
    return os.waitstatus_to_exitcode(int(reply["status"]))


def _line(replies: BinaryIO) -> dict[str, int] | None:
    try:
        line = replies.readline()
    except OSError:
        return None
    try:
        reply = json.loads(line) if line else None
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None
