"""Fixtures for the agent tests: one real Prefect server, real `sunbeam` workers, a real git
remote (file://) and hermetic installs from a local wheelhouse, shared across the session."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import SyncPrefectClient

from tests.support.agent_stack import POOL, Agent, MainRun, Stack, worker_env, write_main
from tests.support.pipeline_repo import ProjectRepo
from tests.support.prefect_server import PrefectServer
from tests.support.wheelhouse import build_wheelhouse
from tests.support.wheels import build_wheel


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prefect's dependency closure repacked from this venv, plus the test-only wheels."""
    wh = build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))
    build_wheel(wh, "sunbeam-extra", "1.0")
    build_wheel(wh, "sunbeam-lent", "1.0")  # one more package: a lock of its own
    return wh


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path, prefect_server: PrefectServer
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("agent")
    server = prefect_server  # the session's shared server
    agent: Agent | None = None
    try:
        repo = ProjectRepo(tmp / "repo")
        write_main(repo, wheelhouse)
        cache_dir, uv_cache = tmp / "cache", tmp / "uv-cache"
        env = worker_env(server, cache_dir, uv_cache)
        env.update(SUNBEAM_WORK_POOL=POOL, SUNBEAM_STOP_TIMEOUT="20")
        agent = Agent(env, tmp / "agent.log").start()
        client = SyncPrefectClient(server.api_url)
        with client:
            flow_id = client.create_flow_from_name("hello")
            yield Stack(server, client, repo, wheelhouse, cache_dir, uv_cache, tmp, flow_id, agent)
    finally:
        if agent is not None:
            agent.stop()


@pytest.fixture(scope="session")
def main_deployment(stack: Stack) -> UUID:
    return stack.deployment("main")


@pytest.fixture(scope="session")
def main_run(stack: Stack, main_deployment: UUID) -> MainRun:
    """The session's first run of `main` (it builds main's env)."""
    out = stack.tmp / "main-run.json"
    run = stack.run(main_deployment, {"out": str(out)})
    assert run.state is not None and run.state.is_completed(), run.state
    return MainRun(run, json.loads(out.read_text()))
