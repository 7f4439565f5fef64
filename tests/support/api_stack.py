"""The API tests' harness: the API on a real socket against a real SecantusDB and Prefect
server (fixtures in tests/api/conftest.py)."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import httpx
import uvicorn
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import ObjectNotFound

from sunbeam_api.main import create_app
from sunbeam_api.orchestration.deployments import ensure_pipeline_deployment
from sunbeam_api.settings import Settings
from tests.support.mongo import Mongo
from tests.support.ports import free_port
from tests.support.prefect_server import PrefectServer

API_KEY = "test-api-key-0123456789"
WEBHOOK_SECRET = "test-webhook-secret"
# A real repository: commissioning checks the ref against it (git ls-remote). Fixed per session
# so that settings and the fixtures that register deployments can name it before it is made.
REPO_ROOT = Path(tempfile.gettempdir()) / f"sunbeam-api-tests-{os.getpid()}"
REPO_URL = (REPO_ROOT / "remote.git").as_uri()
BRANCHES = ["main", "feature/solar", "fix/a.b", "fix-a.b", "release/keep", "release/purge"]
TAGS = ["v1.2.0"]
POOL = "sunbeam-test"
DB = "sunbeam_test"

# The agent's job variables (docs/contracts.md), so Prefect validates runs as it would for real.
BASE_JOB_TEMPLATE = {
    "job_configuration": {
        "repo_url": "{{ repo_url }}",
        "ref": "{{ ref }}",
        "project_dir": "{{ project_dir }}",
        "sync_only": "{{ sync_only }}",
    },
    "variables": {
        "type": "object",
        "properties": {
            "repo_url": {"type": "string"},
            "ref": {"type": "string", "default": "main"},
            "project_dir": {"type": "string", "default": "."},
            "sync_only": {"type": "boolean", "default": False},
        },
    },
}


def make_settings(mongo: Mongo, prefect: PrefectServer, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "mongodb_uri": mongo.uri,
        "mongo_db": DB,
        "prefect_api_url": prefect.api_url,
        "api_key": API_KEY,
        "work_pool": POOL,
        "pipeline_repo": REPO_URL,
        "github_webhook_secret": WEBHOOK_SECRET,
        "backend_timeout_s": 1.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


class LiveServer:
    """The API on a real socket (uvicorn in a thread), so paths are decoded as in production."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def served(settings: Settings) -> Iterator[httpx.Client]:
    """A short-lived API on its own socket, for tests that need different settings."""
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def ensure_main(settings: Settings) -> str:
    async def ensure() -> str:
        async with PrefectClient(api=settings.prefect_api_url) as client:
            return str(
                await ensure_pipeline_deployment(
                    client, repo_url=REPO_URL, ref="main", work_pool=POOL
                )
            )

    return asyncio.run(ensure())


def read_deployment(prefect_api_url: str, full_name: str) -> DeploymentResponse | None:
    """The deployment `flow/name`, or None when there is none."""

    async def read() -> DeploymentResponse | None:
        async with PrefectClient(api=prefect_api_url) as client:
            try:
                return await client.read_deployment_by_name(full_name)
            except ObjectNotFound:
                return None

    return asyncio.run(read())


def deployment_runs(prefect_api_url: str, deployment_id: UUID) -> list[FlowRun]:
    """Every flow run of one deployment."""

    async def read() -> list[FlowRun]:
        async with PrefectClient(api=prefect_api_url) as client:
            only = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            return await client.read_flow_runs(deployment_filter=only)

    return asyncio.run(read())


SEEDED = [
    # (ref, event, stage, name, units, n_points)
    ("main", "FSGP_2025_Day_1", "power", "PackPower", "W", 1000),
    ("main", "FSGP_2025_Day_1", "power", "MotorPower", "W", 1000),
    ("main", "FSGP_2025_Day_2", "energy", "SOC", "%", 500),
    ("feature/x", "FSGP_2025_Day_1", "power", "PackPower", "W", 120_000),
]
