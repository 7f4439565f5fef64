"""Session fixtures: one real Prefect server, one SecantusDB server, the API served by uvicorn."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pymongo
import pytest
import uvicorn
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate
from secantus import SecantusDBServer

from sunbeam_api.deployments import ensure_pipeline_deployment
from sunbeam_api.main import create_app
from sunbeam_api.settings import Settings
from tests.api.seed import seed_series
from tests.support.gitrepo import PipelineRepo
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


@dataclass
class Mongo:
    """A SecantusDB server that a test may stop and start again on the same port and data."""

    data_dir: Path
    port: int
    server: SecantusDBServer | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self.server = SecantusDBServer(
            host="127.0.0.1", port=self.port, storage_path=str(self.data_dir)
        )
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self) -> pymongo.MongoClient:
        return pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=5000, tz_aware=True)


@pytest.fixture(scope="session", autouse=True)
def pipeline_repo() -> Iterator[PipelineRepo]:
    repo = PipelineRepo(REPO_ROOT)
    repo.write("pipeline/README.md", "the pipeline\n")
    for branch in BRANCHES:
        repo.commit(f"work on {branch}", branch=branch)
    for tag in TAGS:
        repo.tag(tag)
    try:
        yield repo
    finally:
        shutil.rmtree(REPO_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mongo]:
    m = Mongo(data_dir=tmp_path_factory.mktemp("mongo"), port=free_port())
    m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="session")
def prefect(prefect_server: PrefectServer) -> PrefectServer:
    asyncio.run(_create_pool(prefect_server.api_url))
    return prefect_server


async def _create_pool(api_url: str) -> None:
    async with PrefectClient(api=api_url) as client:
        await client.create_work_pool(
            WorkPoolCreate(name=POOL, type="sunbeam", base_job_template=BASE_JOB_TEMPLATE)
        )


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


@pytest.fixture(scope="session")
def settings(mongo: Mongo, prefect: PrefectServer) -> Settings:
    return make_settings(mongo, prefect)


@pytest.fixture(scope="session")
def live_api(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
def api(live_api: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_api.url, timeout=30) as client:
        yield client


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def prefect_client(prefect: PrefectServer) -> PrefectClient:
    return PrefectClient(api=prefect.api_url)


def _ensure_main(settings: Settings) -> str:
    async def ensure() -> str:
        async with PrefectClient(api=settings.prefect_api_url) as client:
            return str(
                await ensure_pipeline_deployment(
                    client, repo_url=REPO_URL, ref="main", work_pool=POOL
                )
            )

    return asyncio.run(ensure())


@pytest.fixture
def main_deployment(settings: Settings) -> str:
    """run-sunbeam/main exists (re-ensured per test: another test may have decommissioned it)."""
    return _ensure_main(settings)


@pytest.fixture(scope="module")
def main_deployment_once(settings: Settings) -> str:
    return _ensure_main(settings)


SEEDED = [
    # (ref, event, stage, name, units, n_points)
    ("main", "FSGP_2025_Day_1", "power", "PackPower", "W", 1000),
    ("main", "FSGP_2025_Day_1", "power", "MotorPower", "W", 1000),
    ("main", "FSGP_2025_Day_2", "energy", "SOC", "%", 500),
    ("feature/x", "FSGP_2025_Day_1", "power", "PackPower", "W", 120_000),
]


@pytest.fixture(scope="session")
def seeded(mongo: Mongo) -> list[tuple[str, str, str, str, str, int]]:
    client = mongo.client()
    try:
        for ref, event, stage, name, units, n in SEEDED:
            # value i == i, so window and bucket means are easy to check; every 10th is NaN.
            values = [float("nan") if i % 10 == 9 else float(i) for i in range(n)]
            seed_series(
                client,
                DB,
                ref=ref,
                event=event,
                stage=stage,
                name=name,
                values=values,
                units=units,
            )
    finally:
        client.close()
    return SEEDED
