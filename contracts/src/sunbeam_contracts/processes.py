"""The processes Sunbeam starts: default signal dispositions, stopping a group, liveness.

One home for them, so the agent, `sunbeam up`, the sync and the tests stop processes the same
way.

Signal dispositions. A shell starts a background job (`cmd &`, `nohup cmd &`, as schedulers and
many CI runners do) with SIGINT and SIGQUIT *ignored*, and an ignored signal stays ignored across
fork and exec; a Python process started so does not even install its KeyboardInterrupt handler.
Prefect's worker stops on SIGINT, so a worker started under such a parent never stopped. Exec
resets a signal with a handler to its default but keeps an ignored one ignored, hence two tools:

- `restore_stop_signals()`, first thing in every entry point (the agent, `sunbeam up`,
  `sunbeam-run`, `sunbeam-sync`, the `sunbeam` worker): this process handles SIGINT, SIGQUIT and
  SIGTERM as if started in a terminal, and so every child started afterwards, by our code or by a
  library's (Prefect's worker starting flow runs), starts with their defaults. Done once in the
  main thread before any thread or child exists, it races nothing (unlike resetting around each
  spawn), costs nothing per child, and reaches children whose spawn we do not control.
- `default_signals_in_child()`, for a `preexec_fn` a caller needs anyway (the sync's git and uv:
  their preexec_fn ties them to our life): the child resets them itself, whatever the process
  that uses the sync inherited. No preexec_fn is added for this alone: Python warns it is unsafe
  when threads run, and the entry points above already cover their children.

SIGHUP is left as inherited: ignoring it is what `nohup` is for.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

# The signals a graceful stop arrives by (a terminal's Ctrl-C and Ctrl-\, `kill`, `docker stop`).
STOP_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)

# Resolved once, at import: between fork and exec only this already-loaded function is called.
_c_signal = ctypes.CDLL(None, use_errno=True).signal
_c_signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
_c_signal.restype = ctypes.c_void_p


def restore_stop_signals() -> list[str]:
    """SIGINT, SIGQUIT and SIGTERM ignored by inheritance get their defaults back (SIGINT:
    KeyboardInterrupt, as Python's own start-up gives it); returns the names restored.

    Call it first in an entry point's main thread; elsewhere it does nothing (Python only lets
    the main thread set handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        return []
    restored = []
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) == signal.SIG_IGN:
            default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
            signal.signal(signum, default)
            restored.append(signal.Signals(signum).name)
    return restored


def default_signals_in_child() -> None:
    """In a `preexec_fn` (between fork and exec): the stop signals back to SIG_DFL.

    Only signal(2), async-signal-safe, through libc: no Python signal machinery after fork.
    """
    for signum in STOP_SIGNALS:
        _c_signal(signum, 0)  # 0: SIG_DFL


def signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to every process of group `pgid`; False when the group is gone."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal: the group still exists
        return True
    return True


def stop_groups(
    pgids: Iterable[int],
    *,
    grace: float,
    gone: Callable[[], bool] | None = None,
    poll: float = 0.1,
) -> bool:
    """Stop process groups: SIGTERM, then SIGKILL for whatever is left after `grace` seconds.

    `gone` says when the groups are stopped: by default when no live process of any of them is
    left; a caller whose own child leads a group passes one that reaps it (`proc.poll()`), since
    an unreaped child lingers as a zombie. Returns True when SIGTERM sufficed. After SIGKILL it
    waits (up to 10 s) for `gone` too; it never raises.
    """
    groups = list(pgids)
    done = gone or (lambda: not any(group_alive(g) for g in groups))
    for pgid in groups:
        signal_group(pgid, signal.SIGTERM)
    if _wait(done, grace, poll):
        return True
    for pgid in groups:
        signal_group(pgid, signal.SIGKILL)
    _wait(done, 10.0, poll)
    return False


def _wait(done: Callable[[], bool], timeout: float, poll: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def pid_alive(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie (an exited, unreaped process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it exists
        pass
    fields = _stat(pid)  # None without /proc, or where /proc hides it: alive, as kill said
    return fields is None or fields[0] != "Z"


def group_alive(pgid: int) -> bool:
    """True while process group `pgid` has a member that is not a zombie."""
    if not signal_group(pgid, 0):
        return False
    table = _table()
    if table is None:  # no /proc: a zombie counts as alive here
        return True
    return any(pgrp == pgid and state != "Z" for state, _ppid, pgrp in table.values())


def descendants(pid: int) -> set[int]:
    """Every live descendant of `pid` (Linux /proc; empty where there is none)."""
    table = _table() or {}
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        kids = {p for p, (state, ppid, _) in table.items() if ppid == current and state != "Z"}
        found |= kids
        todo.extend(kids)
    return found


def _table() -> dict[int, tuple[str, int, int]] | None:
    """Every process's (state, parent, process group), or None without /proc."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    table = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            fields = _stat(entry.name)
            if fields is not None:
                table[int(entry.name)] = (fields[0], int(fields[1]), int(fields[2]))
    return table
