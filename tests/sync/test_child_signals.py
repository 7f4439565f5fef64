"""The sync's git and uv get default signal dispositions, whatever the process using the sync
inherited: started in the background (`nohup … &`, a scheduler, CI), a process ignores SIGINT and
SIGQUIT, and an ignored signal stays ignored across fork and exec unless the child resets it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from sunbeam_sync.git.runner import GitRunner
from sunbeam_sync.run import proc
from sunbeam_sync.run.log import Redactor, SyncLog

STOP = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)
# The child reports what it ignores, as /proc/<pid>/status says it (`$$`: the child itself).
REPORT = "grep ^SigIgn: /proc/$$/status"


@contextlib.contextmanager
def _ignoring_the_stop_signals() -> Iterator[None]:
    """This process as a background start leaves it (and SIGTERM too), until the end."""
    saved = {signum: signal.getsignal(signum) for signum in STOP}
    for signum in STOP:
        signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def _ignored(output: str) -> set[signal.Signals]:
    mask = int(output.split("SigIgn:")[1].split()[0], 16)
    return {s for s in signal.Signals if mask & (1 << (s - 1))}


def test_git_and_uv_take_the_stop_signals_when_the_sync_ignores_them(tmp_path: Path) -> None:
    log = SyncLog(None, Redactor())
    git = GitRunner(tmp_path, {"PATH": os.environ["PATH"]}, log)
    with _ignoring_the_stop_signals():
        # What the uv driver runs through, and a real git starting a shell alias.
        direct = proc.run(["sh", "-c", REPORT], log=log, tag="uv", quiet=True)
        through_git = git.run("-c", f"alias.report=!{REPORT}", "report", quiet=True)
        # The check is not vacuous: a child started without the sync's runner ignores them.
        plain = subprocess.run(["sh", "-c", REPORT], capture_output=True, text=True)
    assert _ignored(plain.stdout) >= set(STOP)
    assert direct.returncode == 0 and through_git.returncode == 0
    assert _ignored(direct.output) & set(STOP) == set(), direct.output
    assert _ignored(through_git.output) & set(STOP) == set(), through_git.output
