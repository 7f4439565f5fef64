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
A run on an env with no warm interpreter yet (a pushed branch's new lock, its first runs) is
forked from another env's interpreter when it can be lent (`_lender`): the same base
interpreter and Prefect settings, and every file of site-packages that interpreter imported is
the same file (device and inode) in this env, as when both hardlink the same uv cache entries.
The child then takes this env's site-packages, prefix and executable (`_warm_main._switch`).
A prewarm starts no interpreter where one can be lent: its import would slow the run that
comes right after it.
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
from typing import Any, BinaryIO

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
# `_` is the shell's last command (a worker started as `venv/bin/x` names that venv): no setting.
_PER_RUN = frozenset({"PYTHONPATH", "_"})
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


def lender_key(run: WarmRun) -> str:
    """What an interpreter lent to another env must share with it: the base interpreter and the
    environment (the env's own folder, in VIRTUAL_ENV and PATH, left out)."""
    env = {k: v.replace(run.env_dir, "{env}") for k, v in warm_environment(run.env).items()}
    identity = [os.path.realpath(run.python), sorted(env.items())]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Lender:
    """Another env's ready interpreter that can fork this run: its socket, its env's folder."""

    socket: Path
    env_dir: str
    pid: int
    switch: dict[str, str]


def _lender(folder: Path, run: WarmRun) -> Lender | None:
    """A ready interpreter of another env whose imported files are all this env's too."""
    sites = sorted(Path(run.env_dir).glob("lib/python*/site-packages"))
    if len(sites) != 1:
        return None
    key = lender_key(run)
    for card_path in sorted(folder.glob("*.sock.card")):
        card = _card(card_path)
        if card is None or card.get("key") != key or card.get("prefix") == run.env_dir:
            continue
        where = card_path.with_suffix("")
        holder = _holder(_lock_of(where))
        if holder is not None and holder.state == "ready" and _same_files(card, sites[0]):
            switch = {"prefix": run.env_dir, "site": str(sites[0]), "executable": run.python}
            return Lender(where, str(card["prefix"]), holder.pid, switch)
    return None


def _card(path: Path) -> dict[str, Any] | None:
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def _same_files(card: dict[str, Any], site: Path) -> bool:
    """Every file the lender imported is the same file here; its .pth files say the same; no
    package it lacks registers Prefect plugins (its import would have loaded them)."""
    try:
        for rel, (dev, ino, _size) in card["files"].items():
            st = os.stat(site / rel)
            if (st.st_dev, st.st_ino) != (dev, ino):
                return False
        names = os.listdir(site)
        pth = {n: (site / n).read_text(errors="replace") for n in names if n.endswith(".pth")}
        if pth != card["pth"]:
            return False
        added = {n for n in names if n.endswith(".dist-info")} - set(card["dists"])
        return not any(_prefect_plugin(site / n) for n in added)
    except (OSError, KeyError, TypeError, ValueError):
        return False


def _prefect_plugin(dist_info: Path) -> bool:
    try:
        text = (dist_info / "entry_points.txt").read_text(errors="replace")
    except OSError:
        return False
    return "[prefect" in text


# A socket's path has at most 107 bytes; ours is FOLDER/<32 hex>.sock, bound first as .sock.<pid>.
_SOCKET_PATH_MAX = 107
_SOCKET_NAME = 32 + len(".sock") + 8


def why_cold(settings: WarmSettings) -> str | None:
    """Why runs here cannot use warm interpreters although they are on (one line naming the
    fix), or None. Turned off (`count` 0) is not a problem."""
    folder = settings.where
    if settings.count <= 0:
        return None
    if len(os.fsencode(folder)) + 1 + _SOCKET_NAME > _SOCKET_PATH_MAX:
        limit = _SOCKET_PATH_MAX - 1 - _SOCKET_NAME
        return (
            f"{DIR_ENV} {folder} is too long for a Unix socket's path: "
            f"use a folder of at most {limit} bytes"
        )
    try:
        private = private_folder(folder)
    except OSError as exc:
        return f"{DIR_ENV} {folder} cannot be used ({exc.strerror}): point it at a writable folder"
    if not private:
        return (
            f"{DIR_ENV} {folder} is not a private folder: make it a folder owned by user "
            f"{os.getuid()} with mode 0700, or point {DIR_ENV} elsewhere"
        )
    return None


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
    started: Callable[[int, str | None], None],
    stopping: Callable[[], bool],
    start: bool = True,
) -> int | None:
    """Run the flow in a warm interpreter: its exit code (negative: killed by that signal), or
    None when none took it (then, with `start`, one is started for later runs). `started(pid,
    lender)` is told the flow's process and, when another env's interpreter forked it, that
    env's folder; `stopping()` says the
    launcher was asked to stop before the flow started (the flow is then stopped at once)."""
    folder = settings.where
    if settings.count <= 0 or why_cold(settings) is not None:
        return None
    where = address(folder, run)
    conn, lent = _connect(where), None
    if conn is None:
        holder, lent = _holder(_lock_of(where)), _lender(folder, run)
        if holder is None and start:
            # None yet: the interpreter starts beside this run, importing once this run has
            # ended (waiting for it would cost this run more than a cold start; importing at
            # the same time makes both slower).
            _start(
                settings, where, run, after=os.getpid(), lender=None if lent is None else lent.pid
            )
        if lent is not None:
            conn = _connect(lent.socket)
        elif holder is not None and holder.state == "importing":
            conn = _await(where)  # sooner than a cold start
        # else: none, or it waits for a cold start to end first: this one starts cold too
        if conn is None:
            return None
    with conn, conn.makefile("rb") as replies:
        pid = _request(conn, replies, run, lent)
        if pid is None:
            return None
        started(pid, None if lent is None else lent.env_dir)
        return _wait(replies, pid, stopping)


def start_warm(settings: WarmSettings, run: WarmRun) -> None:
    """Start the interpreter of `run` if none is there, without waiting for it (a prewarm)."""
    folder = settings.where
    if settings.count <= 0 or why_cold(settings) is not None:
        return
    where = address(folder, run)
    conn = _connect(where)
    if conn is not None:
        conn.close()
        return
    if _holder(_lock_of(where)) is None and _lender(folder, run) is None:
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


def _start(
    settings: WarmSettings, where: Path, run: WarmRun, *, after: int, lender: int | None = None
) -> None:
    """Start an interpreter at `where` (after process `after` ends, at most 30 s; 0: at once),
    unless that would stop interpreter `lender` (the one lending this run its process)."""
    if not _make_room(where.parent, settings.count, lender):
        return
    keep = () if run.lease_fd is None else (run.lease_fd,)
    command = [run.python, "-c", _RUN_FILE, _program_file()]
    arguments = [str(where), repr(settings.idle_seconds), str(os.getppid()), str(after)]
    arguments.append(lender_key(run))
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


def _make_room(folder: Path, count: int, keep: int | None = None) -> bool:
    """Stop the least recently used interpreters so that a new one makes at most `count`;
    False (nothing stopped) if that would stop `keep`."""
    live = live_interpreters(folder)
    excess = live[: max(0, len(live) - count + 1)]
    if any(holder.pid == keep for holder in excess):
        others = [holder for holder in live if holder.pid != keep]
        if len(others) < len(excess):
            return False
        excess = others[: len(excess)]
    for holder in excess:
        with contextlib.suppress(OSError):
            os.kill(holder.pid, signal.SIGTERM)  # it stops taking runs and ends after its own
    return True


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
        record = os.pread(fd, 64, 0).decode(errors="replace").strip()
        pid, _, state = record.partition(" ")
        return Holder(os.fstat(fd).st_mtime, int(pid), state) if pid.isdigit() else None
    finally:
        os.close(fd)
    return None


def _request(
    conn: socket.socket, replies: BinaryIO, run: WarmRun, lent: Lender | None
) -> int | None:
    request = {"cwd": run.cwd, "env": dict(run.env), "program": run.program}
    if lent is not None:
        request["switch"] = lent.switch
    body = json.dumps(request).encode()
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
