"""Session fixtures: one real Prefect server, one SecantusDB server, the API served by uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate

from sunbeam_api.settings import Settings
from tests.api.seed import seed_series
from tests.support.api_stack import (
    API_KEY,
    BASE_JOB_TEMPLATE,
    DB,
    POOL,
    SEEDED,
    LiveServer,
    ensure_main,
    make_settings,
)
from tests.support.mongo import Mongo
from tests.support.ports import free_port
from tests.support.prefect_server import PrefectServer


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


@pytest.fixture
def main_deployment(settings: Settings) -> str:
    """run-sunbeam/main exists (re-ensured per test: another test may have decommissioned it)."""
    return ensure_main(settings)


@pytest.fixture(scope="module")
def main_deployment_once(settings: Settings) -> str:
    return ensure_main(settings)


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
