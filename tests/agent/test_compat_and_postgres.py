"""An older Prefect 3.x in the pipeline's lock still runs; the agent works on PostgreSQL too."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import SyncPrefectClient

from tests.support.agent_stack import Agent, MainRun, Stack, labels, worker_env
from tests.support.pipeline_repo import pyproject
from tests.support.prefect_server import (
    PrefectServer,
    postgres_database,
    start_prefect_server,
)

OLD_PREFECT = "3.6.29"
# What prefect 3.6.29 needs that the platform venv (prefect 3.9) has at other versions.
OLD_PREFECT_EXTRAS = [
    "apprise>=1.1.0,<2.0.0",
    "packaging>=21.3,<26.3",
    "python-slugify>=5.0,<9.0",
    "ruamel-yaml-clib>=0.2.8",
]


def _pip() -> list[str] | None:
    """A pip to download with: the venv has none, its base interpreter usually does."""
    base = getattr(sys, "_base_executable", None)
    for python in (sys.executable, base, shutil.which("python3")):
        if not python:
            continue
        probe = subprocess.run([python, "-m", "pip", "--version"], capture_output=True)
        if probe.returncode == 0:
            return [python, "-m", "pip"]
    return None


@pytest.fixture(scope="session")
def old_prefect_links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one non-hermetic input: an older prefect's wheels can't be made from this venv, so
    they come from PyPI once per session (everything else still comes from the wheelhouse)."""
    pip = _pip()
    if pip is None:
        pytest.skip("no pip to download the older prefect's wheels with")
    dest = tmp_path_factory.mktemp("old-prefect")
    result = subprocess.run(
        [
            *pip,
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(dest),
            f"prefect=={OLD_PREFECT}",
            *OLD_PREFECT_EXTRAS,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.skip(f"could not download prefect {OLD_PREFECT} from PyPI: {result.stderr[-300:]}")
    return dest


def test_a_lock_with_an_older_prefect_still_runs(
    stack: Stack, main_deployment: UUID, old_prefect_links: Path, tmp_path: Path
) -> None:
    stack.repo.push_branch(
        "old-prefect",
        {"pyproject.toml": pyproject("demo-old", [f"prefect=={OLD_PREFECT}"])},
        lock_from=(stack.wheelhouse, old_prefect_links),
    )

    out = tmp_path / "old.json"
    run = stack.run(main_deployment, {"out": str(out)}, {"ref": "old-prefect"})
    assert run.state is not None and run.state.is_completed(), run.state
    info = json.loads(out.read_text())
    assert info["prefect"] == OLD_PREFECT
    assert info["SUNBEAM_REF"] == "old-prefect"
    assert labels(run)["sunbeam.built"] == "true"


@pytest.fixture(scope="module")
def postgres_server(stack: Stack) -> Iterator[tuple[PrefectServer, SyncPrefectClient]]:
    with postgres_database("sunbeam_agent_tests") as url:
        if url is None:
            pytest.skip("no local PostgreSQL")
        server = start_prefect_server(stack.tmp / "prefect-pg", database_url=url)
        try:
            with SyncPrefectClient(server.api_url) as client:
                yield server, client
        finally:
            server.stop()


def test_agent_on_a_postgres_backed_server(
    stack: Stack,
    main_run: MainRun,
    postgres_server: tuple[PrefectServer, SyncPrefectClient],
    tmp_path: Path,
) -> None:
    server, client = postgres_server
    # Same cache as the shared stack: main's env is already there, so this is a hit.
    env = worker_env(server, stack.cache_dir, stack.uv_cache)
    env["SUNBEAM_WORK_POOL"] = "agent-pg-pool"
    agent = Agent(env, tmp_path / "agent-pg.log").start()
    try:
        flow_id = client.create_flow_from_name("hello")
        pg_stack = Stack(
            server,
            client,
            stack.repo,
            stack.wheelhouse,
            stack.cache_dir,
            stack.uv_cache,
            tmp_path,
            flow_id,
            agent,
        )
        deployment = pg_stack.deployment("main-pg", "agent-pg-pool")
        out = tmp_path / "pg.json"
        run = pg_stack.run(deployment, {"out": str(out)})
        assert run.state is not None and run.state.is_completed(), run.state
        got = labels(run)
        assert got["sunbeam.cache_hit"] == "true"
        assert got["sunbeam.env_key"] == labels(main_run.run)["sunbeam.env_key"]
        assert json.loads(out.read_text())["SUNBEAM_REF"] == "main"
    finally:
        agent.stop()
