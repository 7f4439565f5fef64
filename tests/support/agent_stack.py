"""The agent tests' harness: real `sunbeam` workers on a real Prefect server, a file:// git
remote and hermetic installs from a local wheelhouse (fixtures in tests/agent/conftest.py)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import FlowRun
from prefect.states import Cancelling

from sunbeam_contracts import run_labels
from sunbeam_contracts.naming import FLOW_NAME, MAIN_DEPLOYMENT
from tests.support import agent_flow as flow_source
from tests.support.pipeline_repo import ProjectRepo, pyproject
from tests.support.ports import free_port
from tests.support.prefect_server import PrefectServer, deploy
from tests.support.processes import ManagedProcess
from tests.support.pyindex import LocalIndex
from tests.support.wheels import build_wheel

BIN = Path(sys.executable).parent
POOL = "agent-tests"
# The test flows lock the Prefect the platform runs (its wheel is in the wheelhouse), so the
# agent suite runs unchanged against any Prefect release installed in the venv.
PREFECT_PIN = f"prefect=={importlib.metadata.version('prefect')}"


def worker_env(server: PrefectServer, cache_dir: Path, uv_cache: Path) -> dict[str, str]:
    env = server.env()
    env.update(
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_HEARTBEAT_SECONDS="5",
        PREFECT_LOGGING_TO_API_BATCH_INTERVAL="0.3",
        SUNBEAM_CACHE_DIR=str(cache_dir),
        SUNBEAM_CANCEL_POLL_SECONDS="0.5",
        UV_CACHE_DIR=str(uv_cache),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    extra_path = os.environ.get("SUNBEAM_TEST_EXTRA_PYTHONPATH")
    if extra_path:
        env["PYTHONPATH"] = extra_path
    return env


@dataclass
class Agent:
    """A `sunbeam-agent` process (entrypoint → `prefect worker start --type sunbeam`)."""

    env: dict[str, str]
    log_path: Path
    health_port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    def start(self, timeout: float = 120, *, background: bool = False) -> Agent:
        return self.launch(background=background).wait_healthy(timeout)

    def launch(self, *, background: bool = False) -> Agent:
        """Start it; with `background`, as `nohup sunbeam-agent &` would (ManagedProcess)."""
        env = {**self.env, "PREFECT_WORKER_WEBSERVER_PORT": str(self.health_port)}
        self.process = ManagedProcess(
            "sunbeam-agent", [str(BIN / "sunbeam-agent")], env, self.log_path
        )
        self.process.start(background=background)
        return self

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.process.proc if self.process else None

    def wait_healthy(self, timeout: float = 120) -> Agent:
        assert self.process is not None
        try:
            self.process.wait_healthy(f"http://127.0.0.1:{self.health_port}/health", timeout)
        except AssertionError:
            self.stop()
            raise
        return self

    def wait_for_line(self, text: str, timeout: float) -> float:
        assert self.process is not None
        return self.process.wait_for_line(text, timeout)

    def tail(self, chars: int = 4000) -> str:
        return self.process.tail(chars) if self.process else ""

    def stop(self, timeout: float = 60) -> int | None:
        # SIGTERM to the agent alone: it drains its flow runs itself; the group only if it hangs.
        return self.process.stop(timeout, group=False) if self.process else None


@dataclass
class Stack:
    server: PrefectServer
    client: SyncPrefectClient
    repo: ProjectRepo
    wheelhouse: Path
    cache_dir: Path
    uv_cache: Path
    tmp: Path
    flow_id: UUID
    agent: Agent

    def deployment(self, name: str, pool: str = POOL, **kwargs: object) -> UUID:
        job_variables = {"repo_url": self.repo.url, "ref": "main", "project_dir": "pipeline"}
        job_variables.update(kwargs.pop("job_variables", {}) or {})  # type: ignore[arg-type]
        return self.client.create_deployment(
            flow_id=self.flow_id,
            name=name,
            work_pool_name=pool,
            entrypoint=flow_source.ENTRYPOINT,
            job_variables=job_variables,
            **kwargs,  # type: ignore[arg-type]
        )

    def pipeline_main(self, pool: str) -> UUID:
        """run-sunbeam/main (what prewarms run on) on `pool`, with the test flow."""
        job_variables = {"repo_url": self.repo.url, "ref": "main", "project_dir": "pipeline"}
        return deploy(
            self.client, FLOW_NAME, MAIN_DEPLOYMENT, pool, flow_source.ENTRYPOINT, job_variables
        )

    def submit(
        self,
        deployment_id: UUID,
        parameters: dict[str, object] | None = None,
        job_variables: dict[str, object] | None = None,
    ) -> FlowRun:
        return self.client.create_flow_run_from_deployment(
            deployment_id, parameters=parameters or {}, job_variables=job_variables
        )

    def wait(self, flow_run_id: UUID, timeout: float = 120) -> FlowRun:
        deadline = time.monotonic() + timeout
        while True:
            run = self.client.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_final():
                return run
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"flow run {flow_run_id} still {run.state_name} after {timeout}s\n"
                    + "\n".join(self.logs(flow_run_id)[-30:])
                    + "\n--- agent ---\n"
                    + self.agent.tail()
                )
            time.sleep(0.25)

    def run(
        self,
        deployment_id: UUID,
        parameters: dict[str, object] | None = None,
        job_variables: dict[str, object] | None = None,
        timeout: float = 120,
    ) -> FlowRun:
        return self.wait(self.submit(deployment_id, parameters, job_variables).id, timeout)

    def logs(self, flow_run_id: UUID) -> list[str]:
        records = self.client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200
        )
        return [r.message for r in records]

    @contextmanager
    def slow_branch(self, folder: Path, branch: str) -> Iterator[LocalIndex]:
        """Push `branch`, whose lock adds `sunbeam-BRANCH` from a local index under `folder`:
        within the block every download of that wheel stalls (a sync of it stays in its build)
        until `index.delay` is set back to 0."""
        index = LocalIndex(folder / "index").start()
        try:
            package = f"sunbeam-{branch}"
            index.add(build_wheel(folder / "wheels", package, "1.0"))
            files = {"pyproject.toml": pyproject(f"demo-{branch}", [PREFECT_PIN, package])}
            self.repo.push_branch(branch, files, lock_from=(self.wheelhouse,), index=index.url)
            index.delay = 120
            yield index
        finally:
            index.stop()

    def cancel_mid_build(
        self, deployment: UUID, ref: str, index: LocalIndex, timeout: float
    ) -> tuple[FlowRun, float]:
        """Run `ref` (a `slow_branch`), cancel it once its sync waits on the index: the run as it
        ended, and the seconds from the cancel to its end."""
        run = self.submit(deployment, job_variables={"ref": ref})
        self.wait_for_log(run.id, "building", timeout=120)  # the sync reached uv
        assert index.stalling.wait(timeout=60), "uv never asked the index for the slow wheel"
        started = time.monotonic()
        self.client.set_flow_run_state(run.id, Cancelling(), force=True)
        final = self.wait(run.id, timeout=timeout)
        return final, time.monotonic() - started

    def half_built_envs(self) -> list[str]:
        return [p.name for p in (self.cache_dir / "envs").iterdir() if p.name.startswith(".tmp-")]

    def wait_for_log(self, flow_run_id: UUID, needle: str, timeout: float = 15) -> list[str]:
        """Logs reach the API in batches: wait until a line containing `needle` arrived."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.logs(flow_run_id)
            if any(needle in line for line in lines):
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line with {needle!r}:\n" + "\n".join(lines))
            time.sleep(0.3)


def write_main(repo: ProjectRepo, wheelhouse: Path) -> str:
    files = {
        "pyproject.toml": pyproject("demo-pipeline", [PREFECT_PIN]),
        "flows/hello.py": flow_source.FLOW,
        "src/demo_pipeline/__init__.py": flow_source.package("main-1"),
    }
    return repo.push_branch("main", files, lock_from=(wheelhouse,))


@dataclass(frozen=True)
class MainRun:
    run: FlowRun
    info: dict[str, object]


def labels(run: FlowRun) -> dict[str, str]:
    return {k: str(v) for k, v in (run.labels or {}).items() if k.startswith(run_labels.PREFIX)}
