"""No run is left Running or Pending by dead infrastructure: when the worker and the run's
processes are SIGKILLed together (a host gone, an out-of-memory kill of everything), nobody is
left to report, and the pool's crash watch (a Prefect automation on `sunbeam-run`'s heartbeats)
sets the run Crashed within the bound. On the `sunbeam` worker while the env builds, on
Prefect's stock process worker while the flow runs; the next run heals the env.

The heartbeat and the window are short here (2 s and 10 s) so the tests take seconds; the bound
is the window plus Prefect's evaluation slack, as documented for the defaults.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import ObjectNotFound

from sunbeam_agent.pools.crash_watch import crash_watch
from sunbeam_contracts.heartbeats import (
    CRASH_AFTER_SECONDS_ENV,
    EVALUATION_SLACK_SECONDS,
    HEARTBEAT_SECONDS_ENV,
    automation_name,
)
from tests.support.agent_stack import BIN, Stack, labels, worker_env

HEARTBEAT_SECONDS = 2.0
WINDOW_SECONDS = 10.0
BOUND_SECONDS = WINDOW_SECONDS + EVALUATION_SLACK_SECONDS


@dataclass
class Worker:
    pool: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def fast_env(stack: Stack) -> dict[str, str]:
    env = worker_env(stack.server, stack.cache_dir, stack.uv_cache)
    env[HEARTBEAT_SECONDS_ENV] = str(HEARTBEAT_SECONDS)
    env[CRASH_AFTER_SECONDS_ENV] = str(WINDOW_SECONDS)
    return env


def start_worker(stack: Stack, pool: str, worker_type: str, log: Path) -> Worker:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", worker_type],
            env=fast_env(stack),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while True:  # the worker made its pool (and set it up) before it takes runs
        try:
            stack.client.read_work_pool(pool)
            return Worker(pool, process, log)
        except ObjectNotFound:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.process.poll() is None:
            os.killpg(worker.process.pid, signal.SIGTERM)
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()


def kill_everything(stack: Stack, run_id: UUID, worker: Worker) -> float:
    """SIGKILL the worker's process group and the run's (the launcher's): the host is gone.
    Returns when it happened (monotonic)."""
    infrastructure = stack.client.read_flow_run(run_id).infrastructure_pid or ""
    pid = int(infrastructure.rsplit(":", 1)[-1] or 0)
    assert pid > 0, infrastructure
    groups = {worker.process.pid, os.getpgid(pid)} - {os.getpgrp()}
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    killed = time.monotonic()
    worker.process.wait()
    return killed


def wait_crashed(stack: Stack, run_id: UUID, killed: float) -> tuple[FlowRun, float]:
    """The run once final, and how long after the kill it got there (failing past the bound
    plus a margin, with the run's states)."""
    while True:
        run = stack.client.read_flow_run(run_id)
        elapsed = time.monotonic() - killed
        if run.state is not None and run.state.is_final():
            return run, elapsed
        assert elapsed < BOUND_SECONDS + 30, (
            f"run still {run.state_name} {elapsed:.0f}s after its infrastructure died: "
            + ", ".join(s.name for s in stack.client.read_flow_run_states(run_id))
        )
        time.sleep(0.25)


def assert_crashed_within_bound(run: FlowRun, elapsed: float) -> None:
    assert run.state is not None and run.state.is_crashed(), run.state
    assert "No heartbeat" in (run.state.message or ""), run.state.message
    assert elapsed <= BOUND_SECONDS, f"Crashed {elapsed:.1f}s after the kill"
    print(f"Crashed {elapsed:.1f}s after the kill (bound {BOUND_SECONDS:g}s)")


def test_sunbeam_worker_killed_mid_sync_ends_crashed_and_heals(
    stack: Stack, workers: list[Worker], tmp_path: Path
) -> None:
    pool = "crash-watch-sunbeam"
    worker = start_worker(stack, pool, "sunbeam", tmp_path / "worker.log")
    workers.append(worker)
    with stack.slow_branch(tmp_path, "crash-sync") as index:
        deployment = stack.deployment("crash-sync", pool=pool)
        run = stack.submit(deployment, job_variables={"ref": "crash-sync"})
        stack.wait_for_log(run.id, "building", timeout=120)
        killed = kill_everything(stack, run.id, worker)
        final, elapsed = wait_crashed(stack, run.id, killed)
        assert_crashed_within_bound(final, elapsed)
        assert "set up the crash watch" not in worker.log.read_text()  # it was set up

        index.delay = 0
        workers.append(start_worker(stack, pool, "sunbeam", tmp_path / "worker-2.log"))
        again = stack.run(deployment, job_variables={"ref": "crash-sync"}, timeout=180)
    assert again.state is not None and again.state.is_completed(), again.state
    assert labels(again)["sunbeam.built"] == "true"
    assert stack.half_built_envs() == []


def test_stock_process_worker_killed_mid_flow_ends_crashed(
    stack: Stack, workers: list[Worker], tmp_path: Path
) -> None:
    pool = "crash-watch-process"
    created = subprocess.run(
        [str(BIN / "sunbeam-pool"), "create", pool, "--type", "process"],
        env=fast_env(stack),
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stderr
    assert "crash watch" in created.stdout, created.stdout
    worker = start_worker(stack, pool, "process", tmp_path / "worker.log")
    workers.append(worker)
    deployment = stack.deployment("crash-flow", pool=pool)
    out = tmp_path / "started.json"
    run = stack.submit(deployment, {"out": str(out), "gate": str(tmp_path / "never")})
    deadline = time.monotonic() + 180
    while not out.exists():  # the flow runs (Running), held at its gate
        assert time.monotonic() < deadline, stack.logs(run.id)[-10:]
        time.sleep(0.2)
    killed = kill_everything(stack, run.id, worker)
    final, elapsed = wait_crashed(stack, run.id, killed)
    assert_crashed_within_bound(final, elapsed)
    assert any(s.name == "Running" for s in stack.client.read_flow_run_states(run.id))


def test_sunbeam_pool_create_keeps_one_crash_watch_per_pool(stack: Stack) -> None:
    """Idempotent: made once, kept when unchanged, updated when the window changes; a copy
    (two processes setting up the pool at once) is removed."""
    pool = "crash-watch-idempotent"
    said = []
    for window in ("30", "30", "45", "45"):
        if len(said) == 3:  # what a second process racing the first would have added
            pool_id = stack.client.read_work_pool(pool).id
            stack.client.create_automation(crash_watch(pool, pool_id, 45.0))
            assert len(stack.client.read_automations_by_name(automation_name(pool))) == 2
        env = {**stack.server.env(), CRASH_AFTER_SECONDS_ENV: window}
        created = subprocess.run(
            [str(BIN / "sunbeam-pool"), "create", pool, "--type", "process"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert created.returncode == 0, created.stderr
        said.append(created.stdout.splitlines()[1].split()[0])
    assert said == ["created", "kept", "updated", "kept"]
    found = stack.client.read_automations_by_name(automation_name(pool))
    assert len(found) == 1
    assert found[0].trigger.within.total_seconds() == 45  # type: ignore[union-attr]


def test_a_bad_window_is_one_line(stack: Stack) -> None:
    env = {**stack.server.env(), CRASH_AFTER_SECONDS_ENV: "soon"}
    created = subprocess.run(
        [str(BIN / "sunbeam-pool"), "create", "crash-watch-bad", "--type", "process"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert created.returncode == 2
    assert created.stderr.strip().splitlines() == [
        "sunbeam pool: error: SUNBEAM_CRASH_AFTER_SECONDS='soon' is not a number of seconds: "
        "set a positive number, or unset it for the default (90)"
    ]
