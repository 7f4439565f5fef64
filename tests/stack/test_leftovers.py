"""A stack whose `sunbeam up` was `kill -9`ed is found from its PIDs and stopped (issue 10.1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sunbeam_stack.errors import StackError
from sunbeam_stack.local.state import Recorded, StackState, me, start_time
from sunbeam_stack.up import clear_leftovers
from tests.support.processes import ManagedProcess, wait_for


def _dead() -> Recorded:
    done = subprocess.Popen(["true"])
    started = start_time(done.pid)
    done.wait()
    return Recorded("sunbeam up", done.pid, started)


def _sleeper(tmp_path: Path, name: str) -> ManagedProcess:
    argv = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"]
    proc = ManagedProcess(name, argv, dict(os.environ), tmp_path / f"{name}.log").start()
    proc.wait_for_line("up", timeout=30)
    return proc


def test_children_of_a_killed_up_are_stopped(tmp_path: Path) -> None:
    left = [_sleeper(tmp_path, "prefect-server"), _sleeper(tmp_path, "agent")]
    try:
        children = [Recorded(p.name, p.pid, start_time(p.pid)) for p in left]
        StackState(_dead(), children, {"PREFECT_API_URL": "http://127.0.0.1:1/api"}).write(tmp_path)
        said: list[str] = []
        clear_leftovers(tmp_path, said.append)
        wait_for(lambda: not any(p.running() for p in left), "the leftovers exiting", timeout=10)
        assert f"prefect-server (pid {left[0].pid})" in said[0]
        assert f"agent (pid {left[1].pid})" in said[0]
        assert not (tmp_path / "stack.json").exists()
    finally:
        for p in left:
            p.stop(timeout=5)


def test_a_reused_pid_is_left_alone(tmp_path: Path) -> None:
    other = _sleeper(tmp_path, "unrelated")
    try:
        # Same PID, another start time: a process that merely inherited the number.
        stale = Recorded("agent", other.pid, (start_time(other.pid) or 0) - 1)
        StackState(_dead(), [stale]).write(tmp_path)
        clear_leftovers(tmp_path, lambda m: None)
        assert other.running()
    finally:
        other.stop(timeout=5)


def test_a_live_up_on_the_same_state_folder_is_refused(tmp_path: Path) -> None:
    live = _sleeper(tmp_path, "other-up")
    try:
        StackState(Recorded("sunbeam up", live.pid, start_time(live.pid))).write(tmp_path)
        with pytest.raises(StackError, match=f"already running.*pid {live.pid}|pid {live.pid}"):
            clear_leftovers(tmp_path, lambda m: None)
        assert (tmp_path / "stack.json").exists()
    finally:
        live.stop(timeout=5)


def test_our_own_record_is_not_a_leftover(tmp_path: Path) -> None:
    StackState(me()).write(tmp_path)
    clear_leftovers(tmp_path, lambda m: None)
    assert not (tmp_path / "stack.json").exists()
