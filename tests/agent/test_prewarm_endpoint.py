"""`POST /prewarm` and `sunbeam prewarm`: a ref's env built on its host before anyone runs it.

A real agent (its own cache: one host), the real API and a branch whose lock adds a package that
uv must build from an sdist that waits for the test. The prewarm's build is held there while a
run of the branch is asked for: that run waits on the prewarm's build lock, builds nothing, and
goes on as soon as the env is published.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.schemas.objects import StateType

from sunbeam_api.settings import Settings
from sunbeam_contracts.hosts import host_queue
from tests.support.agent_stack import PREFECT_PIN, Agent, Stack, labels, worker_env
from tests.support.api_stack import served
from tests.support.gated_sdist import waiting_sdist
from tests.support.pipeline_repo import pyproject
from tests.support.ports import free_port
from tests.support.processes import wait_for
from tests.support.pyindex import LocalIndex

POOL = "agent-prewarm"
API_KEY = "prewarm-test-key"
SUNBEAM = str(Path(sys.executable).with_name("sunbeam"))


@pytest.fixture(scope="module")
def agent(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Agent, Path]]:
    """One host for the module: a host that stopped counts as live for three heartbeats, so a
    second agent here would share the prewarms with a dead one."""
    tmp = tmp_path_factory.mktemp("prewarm-agent")
    env = worker_env(stack.server, tmp / "cache", stack.uv_cache)
    env.update(SUNBEAM_WORK_POOL=POOL, SUNBEAM_STOP_TIMEOUT="20")
    started = Agent(env, tmp / "agent.log").start()
    try:
        # Said after the worker's first sync with its pool: its heartbeat names the host.
        started.wait_for_line("Following new flow runs", timeout=60)
        yield started, tmp / "cache"
    finally:
        started.stop()


@pytest.fixture(scope="module")
def main_deployment(stack: Stack, agent: tuple[Agent, Path]) -> Iterator[UUID]:
    """run-sunbeam/main (what prewarms run on) on the agent's pool, the test flow."""
    deployment_id = stack.pipeline_main(POOL)
    try:
        yield deployment_id
    finally:
        stack.client.delete_deployment(deployment_id)  # other suites make their own


def _gated_branch(stack: Stack, tmp_path: Path, gate: Path) -> tuple[str, LocalIndex]:
    """A branch locking `sunbeam-gated`, whose build waits for `gate/go`."""
    wait = (
        f"    Path({str(gate / 'building')!r}).touch()\n"
        f"    while not Path({str(gate / 'go')!r}).exists():\n"
        "        time.sleep(0.05)\n"
    )
    index = LocalIndex(tmp_path / "index").start()
    index.add(waiting_sdist(tmp_path, "sunbeam-gated", "1.0", wait))
    files = {"pyproject.toml": pyproject("demo-gated", [PREFECT_PIN, "sunbeam-gated"])}
    commit = stack.repo.push_branch("gated", files, lock_from=(stack.wheelhouse,), index=index.url)
    return commit, index


def _state_type(stack: Stack, run_id: UUID) -> StateType | None:
    state = stack.client.read_flow_run(run_id).state
    return state.type if state is not None else None


def test_prewarm_builds_once_and_a_run_asked_meanwhile_waits_for_it(
    stack: Stack, agent: tuple[Agent, Path], main_deployment: UUID, tmp_path: Path
) -> None:
    _, cache = agent
    gate = tmp_path / "gate"
    gate.mkdir()
    commit, index = _gated_branch(stack, tmp_path, gate)
    settings = Settings(
        mongodb_uri=f"mongodb://127.0.0.1:{free_port()}/",  # unused by prewarms
        prefect_api_url=stack.server.api_url,
        work_pool=POOL,
        pipeline_repo=stack.repo.url,
        api_key=API_KEY,
    )
    try:
        with served(settings) as api:
            auth = {"Authorization": f"Bearer {API_KEY}"}
            assert api.post("/prewarm", json={"ref": "gated"}).status_code == 401
            r = api.post("/prewarm", json={"ref": "gated"}, headers=auth)
            assert r.status_code == 202, r.text
            answer = r.json()
            (host,) = answer["hosts"]
            assert answer["commit"] == commit and answer["ref"] == "gated"
            (warm_id,) = [UUID(i) for i in answer["runs"]]
            # The same commit again (a hook firing twice): the same run.
            again = api.post("/prewarm", json={"ref": commit}, headers=auth)
            assert again.json()["runs"] == answer["runs"]
            unknown = api.post("/prewarm", json={"ref": "no-such-branch"}, headers=auth)
            assert unknown.status_code == 422 and "no-such-branch" in unknown.json()["detail"]

        wait_for((gate / "building").exists, "the prewarm's build", timeout=90)
        run = stack.submit(main_deployment, {"out": str(tmp_path / "run.json")}, {"ref": "gated"})
        stack.wait_for_log(run.id, "waiting for the build of environment", timeout=60)
        assert _state_type(stack, run.id) == StateType.PENDING  # held by the lock, not running
        (gate / "go").touch()
        opened = time.monotonic()
        warm = stack.wait(warm_id)
        final = stack.wait(run.id)
    finally:
        index.stop()
    assert warm.state is not None and warm.state.is_completed(), warm.state
    assert warm.work_queue_name == host_queue(host)
    assert labels(warm)["sunbeam.built"] == "true"
    assert final.state is not None and final.state.is_completed(), final.state
    got = labels(final)
    assert (
        got["sunbeam.built"] == "false"
        and got["sunbeam.env_key"] == labels(warm)["sunbeam.env_key"]
    )
    assert (cache / "envs" / got["sunbeam.env_key"]).is_dir()
    assert final.start_time is not None and time.monotonic() - opened < 120


def test_sunbeam_prewarm_command(stack: Stack, main_deployment: UUID, tmp_path: Path) -> None:
    settings = Settings(
        mongodb_uri=f"mongodb://127.0.0.1:{free_port()}/",
        prefect_api_url=stack.server.api_url,
        work_pool=POOL,
        pipeline_repo=stack.repo.url,
        api_key=API_KEY,
    )
    with served(settings) as api:
        env = {"SUNBEAM_API_URL": str(api.base_url).rstrip("/"), "PATH": "/usr/bin:/bin"}
        argv = [SUNBEAM, "prewarm", "main", "--wait", "120", "--state-dir", str(tmp_path)]
        done = subprocess.run(
            argv, env={**env, "SUNBEAM_API_KEY": API_KEY}, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        first, *outcomes = done.stdout.strip().splitlines()
        assert first.startswith("prewarming main (") and " on " in first, done.stdout
        assert len(outcomes) == 1 and "Completed: Prewarmed" in outcomes[0], done.stdout

        wrong = subprocess.run(
            argv, env={**env, "SUNBEAM_API_KEY": "wrong"}, capture_output=True, text=True
        )
        assert wrong.returncode == 2
        assert wrong.stderr.strip() == "sunbeam prewarm: invalid API key", wrong.stderr

    nowhere = subprocess.run(
        [SUNBEAM, "prewarm", "main", "--state-dir", str(tmp_path)],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert nowhere.returncode == 2 and len(nowhere.stderr.strip().splitlines()) == 1
    assert "no stack recorded" in nowhere.stderr and "SUNBEAM_API_URL" in nowhere.stderr
