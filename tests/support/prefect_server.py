"""A real Prefect server process for tests (SQLite by default, PostgreSQL on request)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import FlowRun

from tests.support.ports import free_port
from tests.support.processes import ManagedProcess

PREFECT = str(Path(sys.executable).with_name("prefect"))


@dataclass
class PrefectServer:
    home: Path
    port: int
    database_url: str | None = None
    process: ManagedProcess | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.home / "server.log"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def env(self) -> dict[str, str]:
        """Environment for any process (worker, CLI, client) that talks to this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="INFO",
        )
        return env

    def start(self, timeout: float = 120.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        env = self.env()
        env.update(
            PREFECT_SERVER_API_HOST="127.0.0.1",
            PREFECT_SERVER_API_PORT=str(self.port),
            PREFECT_SERVER_UI_ENABLED="false",
            PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED="false",
            PREFECT_SERVER_SERVICES_FOREMAN_ENABLED="false",
        )
        env.pop("PREFECT_API_URL")
        if self.database_url:
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = self.database_url
        argv = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = ManagedProcess("prefect server", argv, env, self.log_path).start()
        try:
            self.process.wait_healthy(f"{self.api_url}/health", timeout)
        except AssertionError:
            self.stop()
            raise

    def tail(self, chars: int = 3000) -> str:
        return self.process.tail(chars) if self.process else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=20)

    def read_flow_run(self, run_id: UUID | str) -> FlowRun:
        with SyncPrefectClient(api=self.api_url) as client:
            return client.read_flow_run(UUID(str(run_id)))


def deploy(
    client: SyncPrefectClient,
    flow_name: str,
    name: str,
    pool: str,
    entrypoint: str,
    job_variables: Mapping[str, object],
) -> UUID:
    """A deployment on `pool` of the flow called `flow_name` (made if the server lacks it)."""
    return client.create_deployment(
        flow_id=client.create_flow_from_name(flow_name),
        name=name,
        work_pool_name=pool,
        entrypoint=entrypoint,
        job_variables=dict(job_variables),
    )


def start_prefect_server(home: Path, database_url: str | None = None) -> PrefectServer:
    server = PrefectServer(home=home, port=free_port(), database_url=database_url)
    server.start()
    return server


def _psql(sql: str) -> bool:
    """Run one statement on the machine's local PostgreSQL; False when there is none."""
    psql = shutil.which("psql")
    if not psql:
        return False
    argv = [psql, "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql]
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=30)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return False
    return True


@contextmanager
def postgres_database(prefix: str) -> Iterator[str | None]:
    """A fresh database on the machine's local PostgreSQL for the block, dropped after it; None
    when there is none. Named per process: two test sessions at once must not share one."""
    name = f"{prefix}_{os.getpid()}"
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    if not (_psql(drop) and _psql(f'CREATE DATABASE "{name}"')):
        yield None
        return
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        _psql(drop)
