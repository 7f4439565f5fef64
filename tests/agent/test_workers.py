"""Several workers on one cache, scheduled runs, and the container entrypoint's behaviour."""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prefect.client.schemas.actions import DeploymentScheduleCreate, WorkPoolCreate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.schedules import IntervalSchedule
from prefect.settings import PREFECT_API_URL, temporary_settings

from sunbeam_agent.host.entrypoint import AgentStartError, ensure_work_pool, wait_for_api
from tests.support.agent_stack import BIN, PREFECT_PIN, Agent, Stack, labels, worker_env
from tests.support.pipeline_repo import pyproject
from tests.support.ports import free_port
from tests.support.processes import wait_for


def test_two_workers_sharing_a_cache_build_each_key_once(stack: Stack, tmp_path: Path) -> None:
    pool = "agent-shared-cache"
    # The CLI path: the entry point makes `--type sunbeam` known to `prefect work-pool create`.
    subprocess.run(
        [str(BIN / "prefect"), "work-pool", "create", pool, "--type", "sunbeam"],
        env=stack.server.env(),
        check=True,
        capture_output=True,
    )
    for queue in ("q1", "q2"):
        stack.client.create_work_queue(name=queue, work_pool_name=pool)
    deps = [PREFECT_PIN, "sunbeam-extra"]
    files = {"pyproject.toml": pyproject("demo-shared", deps)}
    stack.repo.push_branch("shared", files, lock_from=(stack.wheelhouse,))

    shared_cache = tmp_path / "shared-cache"
    agents = []
    try:
        for queue in ("q1", "q2"):
            env = worker_env(stack.server, stack.cache_dir, stack.uv_cache)
            env.update(
                SUNBEAM_WORK_POOL=pool,
                SUNBEAM_WORK_QUEUES=f'["{queue}"]',
                SUNBEAM_STOP_TIMEOUT="30",
            )
            agents.append(Agent(env, tmp_path / f"agent-{queue}.log"))
        for agent in agents:  # both start at once: start-up is slow on a busy machine
            agent.launch()
        for agent in agents:
            agent.wait_healthy()
        deployments = [
            stack.deployment(
                f"shared-{queue}",
                pool=pool,
                work_queue_name=queue,
                job_variables={"ref": "shared", "cache_dir": str(shared_cache)},
            )
            for queue in ("q1", "q2")
        ]
        runs = [stack.submit(d) for d in deployments]
        finals = [stack.wait(r.id) for r in runs]
        for final in finals:
            assert final.state is not None and final.state.is_completed(), final.state
        got = [labels(f) for f in finals]
        assert sorted(g["sunbeam.built"] for g in got) == ["false", "true"]
        assert got[0]["sunbeam.env_key"] == got[1]["sunbeam.env_key"]
        envs = [p for p in (shared_cache / "envs").iterdir() if not p.name.startswith(".")]
        assert len(envs) == 1
        # Each worker ran one of them (one per queue).
        workers = {f.labels.get("prefect.worker.name") for f in finals}
        assert len(workers) == 2, workers
        # And each agent's log names the run it ran, and only that one.
        logs = [agent.log_path.read_text() for agent in agents]
        ran = [[r.id for r in runs if f"Running flow run '{r.id}' here" in log] for log in logs]
        assert sorted(len(ids) for ids in ran) == [1, 1] and ran[0] != ran[1], ran

        # SIGTERM while a flow runs: the agent lets it finish, then exits cleanly.
        out = tmp_path / "graceful.json"
        busy = stack.submit(deployments[0], {"out": str(out), "sleep": 4})
        wait_for(out.exists, "the flow starting", timeout=90)
    finally:
        codes = [agent.stop() for agent in agents]
    assert codes == [0, 0], "\n".join(a.tail() for a in agents)
    # The agent returned only once the flow had finished, and it finished normally.
    finished = stack.wait(busy.id, timeout=10)
    assert finished.state is not None and finished.state.is_completed(), finished.state


def test_scheduled_run_goes_through_the_sync(stack: Stack) -> None:
    first = datetime.now(UTC) + timedelta(seconds=2)
    schedule = DeploymentScheduleCreate(
        schedule=IntervalSchedule(interval=timedelta(hours=1), anchor_date=first), active=True
    )
    deployment_id = stack.deployment("scheduled", schedules=[schedule])
    # What the server's scheduler service does on its next loop, without waiting for it. On
    # SQLite (the shared server's fallback without PostgreSQL) the scheduler may hold the write
    # lock at that moment; the server then answers 503, which Prefect's own client retries too.
    for attempt in range(10):
        response = httpx.post(
            f"{stack.server.api_url}/deployments/{deployment_id}/schedule",
            json={"min_runs": 1, "max_runs": 1},
            timeout=30,
        )
        if response.status_code != 503:
            break
        time.sleep(0.5 * (attempt + 1))
    response.raise_for_status()
    deadline = time.monotonic() + 120
    while True:
        runs = stack.client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )
        due = min(runs, key=lambda r: r.expected_start_time or first, default=None)
        if due is not None and due.state is not None and due.state.is_final():
            break
        assert time.monotonic() < deadline, [(r.expected_start_time, r.state) for r in runs]
        time.sleep(0.5)
    assert due.auto_scheduled
    assert due.state is not None and due.state.is_completed(), due.state
    assert labels(due)["sunbeam.ref"] == "main"


def test_entrypoint_keeps_an_existing_pool_template_unless_asked(stack: Stack) -> None:
    from sunbeam_agent.host.worker import SunbeamWorker

    template = SunbeamWorker.get_default_base_job_template()
    template["variables"]["properties"]["ref"]["default"] = "release"
    stack.client.create_work_pool(
        WorkPoolCreate(name="agent-kept-pool", type="sunbeam", base_job_template=template)
    )
    with temporary_settings({PREFECT_API_URL: stack.server.api_url}):
        assert asyncio.run(ensure_work_pool("agent-kept-pool", overwrite=False)) == "kept"
        kept = stack.client.read_work_pool("agent-kept-pool").base_job_template
        assert kept["variables"]["properties"]["ref"]["default"] == "release"

        assert asyncio.run(ensure_work_pool("agent-kept-pool", overwrite=True)) == "updated"
        replaced = stack.client.read_work_pool("agent-kept-pool").base_job_template
        assert replaced["variables"]["properties"]["ref"]["default"] == "main"

        assert asyncio.run(ensure_work_pool("agent-new-pool", overwrite=False)) == "created"
        created = stack.client.read_work_pool("agent-new-pool")
        assert created.type == "sunbeam"
        assert created.base_job_template["variables"]["properties"]["repo_url"]["title"]


def test_entrypoint_gives_up_waiting_for_a_missing_api() -> None:
    said: list[str] = []
    url = f"http://127.0.0.1:{free_port()}/api"
    started = time.monotonic()
    with pytest.raises(AgentStartError, match="did not answer within 2s"):
        wait_for_api(url, timeout=2, say=said.append)
    assert time.monotonic() - started < 10
    assert said and "waiting for the Prefect API" in said[0]
