"""Prefect's stock process worker runs Sunbeam flows through `sunbeam-run` (a pool made by
`sunbeam-pool create`): the ref's env, provenance in the run list, cancel during the sync, one-line
failures, and no git token in the flow's environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect.states import Cancelled

from sunbeam_contracts.processes import stop_groups
from tests.support.agent_stack import BIN, PREFECT_PIN, MainRun, Stack, labels, worker_env
from tests.support.pipeline_repo import pyproject

POOL = "stock-process-tests"
TOKEN = "sb-test-token-9f8e7d6c5b4a"


@pytest.fixture(scope="module")
def stock_worker(stack: Stack) -> Iterator[Path]:
    created = subprocess.run(
        [str(BIN / "sunbeam-pool"), "create", POOL, "--type", "process"],
        env=stack.server.env(),
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stderr
    assert "created work pool" in created.stdout
    env = worker_env(stack.server, stack.cache_dir, stack.uv_cache)
    env["SUNBEAM_GIT_TOKEN"] = TOKEN  # what the sync would use for a private remote
    log = stack.tmp / "stock-worker.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "process"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield log
    finally:
        stop_groups([proc.pid], grace=30, gone=lambda: proc.poll() is not None)
        proc.wait()


@pytest.fixture(scope="module")
def stock_deployment(stack: Stack, stock_worker: Path) -> UUID:
    return stack.deployment("stock-main", pool=POOL)


def test_stock_process_worker_runs_the_ref_in_its_env(
    stack: Stack, stock_deployment: UUID, main_run: MainRun, tmp_path: Path
) -> None:
    out = tmp_path / "stock.json"
    run = stack.run(stock_deployment, {"out": str(out)}, timeout=180)
    assert run.state is not None and run.state.is_completed(), run.state
    info = json.loads(out.read_text())
    got = labels(run)
    assert info["python"].startswith(str(stack.cache_dir))  # the ref's env, not the worker's
    assert info["SUNBEAM_COMMIT"] == got["sunbeam.commit"]
    assert got["sunbeam.env_key"] == labels(main_run.run)["sunbeam.env_key"]
    assert got["sunbeam.cache_hit"] == "true"
    # The ref and commit are visible in the dashboard's run list: name and tags.
    short = got["sunbeam.commit"][:8]
    assert run.name.startswith(f"main@{short} (")
    assert {"sunbeam-ref:main", f"sunbeam-commit:{short}"} <= set(run.tags)
    # The flow never sees the sync's credentials.
    assert info["SUNBEAM_GIT_TOKEN"] is None
    lines = stack.wait_for_log(run.id, "hello {")
    assert any("[env] cache hit" in line for line in lines)
    assert not any(TOKEN in line for line in lines)


def test_stock_worker_failure_is_one_line(stack: Stack, stock_deployment: UUID) -> None:
    run = stack.run(stock_deployment, job_variables={"ref": "does-not-exist"}, timeout=180)
    assert run.state is not None and run.state.is_failed(), run.state
    message = run.state.message or ""
    assert "does-not-exist" in message and "\n" not in message, message
    assert "sunbeam-ref:does-not-exist" in run.tags  # the run list shows what was asked for


def test_cancel_during_sync_under_the_stock_worker(
    stack: Stack, stock_deployment: UUID, tmp_path: Path
) -> None:
    with stack.slow_branch(tmp_path, "slow-stock") as index:
        final, elapsed = stack.cancel_mid_build(stock_deployment, "slow-stock", index, timeout=60)
    assert final.state is not None and final.state.is_cancelled(), final.state
    assert elapsed < 15, f"cancellation took {elapsed:.1f}s"
    assert all(s.name != "Running" for s in stack.client.read_flow_run_states(final.id))
    assert stack.half_built_envs() == []


def test_a_ref_tag_from_the_run_form_picks_the_ref(
    stack: Stack, stock_deployment: UUID, main_deployment: UUID, tmp_path: Path
) -> None:
    """The dashboard's Custom run form has a Tags field: `sunbeam-ref:REF` runs REF.

    Prefect's V2 form also sends the deployment's job variables as the run's own (its Job
    Variables field comes filled in): a `ref` equal to the deployment's is no choice of the run's,
    so the tag still wins. Without job variables the run is as the API or the V1 form makes it.
    """
    files = {"pyproject.toml": pyproject("demo-pipeline", [PREFECT_PIN, "sunbeam-extra"])}
    sha = stack.repo.push_branch("tagged", files, lock_from=(stack.wheelhouse,))
    cases = [(stock_deployment, False), (main_deployment, True), (stock_deployment, True)]
    for deployment, as_v2_form in cases:  # stock worker and ours alike
        out = tmp_path / f"tagged-{deployment}-{as_v2_form}.json"
        copied = stack.client.read_deployment(deployment).job_variables if as_v2_form else None
        run = stack.client.create_flow_run_from_deployment(
            deployment,
            parameters={"out": str(out)},
            tags=["sunbeam-ref:tagged"],
            job_variables=copied,
        )
        final = stack.wait(run.id, timeout=180)
        assert final.state is not None and final.state.is_completed(), final.state
        assert json.loads(out.read_text())["extra"] == "1.0"
        assert labels(final)["sunbeam.commit"] == sha
        assert "sunbeam-ref:tagged" in final.tags and final.name.startswith("tagged@")


def test_stop_signal_mid_sync_hands_the_run_back(
    stack: Stack, stock_deployment: UUID, tmp_path: Path
) -> None:
    """SIGTERM that is no cancel (a worker or container stopping): the run is scheduled again."""
    with stack.slow_branch(tmp_path, "slow-back"):
        run = stack.submit(stock_deployment, job_variables={"ref": "slow-back"})
        stack.wait_for_log(run.id, "building", timeout=120)
        pid = int((stack.client.read_flow_run(run.id).infrastructure_pid or "0").rsplit(":")[-1])
        assert pid > 0
        os.kill(pid, signal.SIGTERM)  # sunbeam-run itself, as `docker stop` would
        deadline = time.monotonic() + 30
        while True:
            states = [s for s in stack.client.read_flow_run_states(run.id) if s.name == "Scheduled"]
            if any("scheduled again" in (s.message or "") for s in states):
                break
            assert time.monotonic() < deadline, stack.logs(run.id)[-10:]
            time.sleep(0.3)
        # Picked up again, it would sync again: end it (a launcher syncing it sees this and stops).
        stack.client.set_flow_run_state(run.id, Cancelled(), force=True)
        final = stack.wait(run.id, timeout=90)
    assert final.state is not None and final.state.is_cancelled(), final.state
