"""Prewarm runs against a busy SQLite Prefect server: its 503s ("database is locked") are retried
at once, within a budget, not after the Prefect client's 2, 4, 8, 16 s back-off.

The API's own Prefect client (a real PrefectClient) over a mock transport that answers as
Prefect's server does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import uuid4

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun, Worker, WorkerStatus
from prefect.client.schemas.responses import DeploymentResponse

from sunbeam_api.dependencies import prefect_client
from sunbeam_api.orchestration import prewarm
from sunbeam_api.settings import Settings
from sunbeam_contracts.naming import FLOW_NAME, MAIN_DEPLOYMENT

POOL = "hosts"
HOSTS = ["alpha", "beta", "gamma"]
DEPLOYMENT = DeploymentResponse(name=MAIN_DEPLOYMENT, flow_id=uuid4(), work_pool_name=POOL)
SHA = "0123456789abcdef0123456789abcdef01234567"


def _workers(hosts: list[str]) -> list[dict[str, object]]:
    return [
        Worker(
            name=f"sunbeam-{i:08x}@{host}",
            work_pool_id=uuid4(),
            status=WorkerStatus.ONLINE,
            last_heartbeat_time=datetime.now(UTC),
            heartbeat_interval_seconds=30,
        ).model_dump(mode="json")
        for i, host in enumerate(hosts)
    ]


class LockedServer:
    """Answers each creation `busy(attempt)` (503 while true), as a locked SQLite server does."""

    def __init__(
        self, busy: Callable[[int], bool], status: int = 503, hosts: list[str] = HOSTS
    ) -> None:
        self.busy, self.status, self.hosts = busy, status, hosts
        self.attempts: Counter[str] = Counter()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/csrf-token"):  # as a server with CSRF protection off answers
            return httpx.Response(422, json={"detail": "CSRF protection is disabled."})
        if path == f"/api/deployments/name/{FLOW_NAME}/{MAIN_DEPLOYMENT}":
            return httpx.Response(200, json=DEPLOYMENT.model_dump(mode="json"))
        if path == f"/api/work_pools/{POOL}/workers/filter":
            return httpx.Response(200, json=_workers(self.hosts))
        if path == f"/api/deployments/{DEPLOYMENT.id}/create_flow_run":
            body = json.loads(request.content)
            key = body["idempotency_key"]
            self.attempts[key] += 1
            if self.busy(self.attempts[key]):
                return httpx.Response(
                    self.status, json={"exception_message": "Service Unavailable"}
                )
            run = FlowRun(
                id=uuid4(),
                name=body["name"],
                flow_id=DEPLOYMENT.flow_id,
                deployment_id=DEPLOYMENT.id,
                work_queue_name=body.get("work_queue_name"),
            )
            return httpx.Response(201, json=run.model_dump(mode="json"))
        return httpx.Response(404, json={"detail": f"unexpected {request.method} {path}"})


def _prewarm(server: LockedServer) -> tuple[prewarm.Prewarms, float]:
    async def go() -> prewarm.Prewarms:
        settings = Settings(
            mongodb_uri="mongodb://127.0.0.1:9/",  # unused
            prefect_api_url="http://prefect.test/api",
            work_pool=POOL,
        )
        async with prefect_client(settings, transport=httpx.MockTransport(server)) as client:
            return await prewarm.create_prewarm_runs(client, SHA, "refs/heads/x")

    start = time.monotonic()
    result = asyncio.run(go())
    return result, time.monotonic() - start


def test_each_hosts_run_is_created_despite_two_locked_answers_in_a_second_or_so() -> None:
    server = LockedServer(busy=lambda attempt: attempt <= 2)
    result, took = _prewarm(server)
    assert result.hosts == HOSTS
    assert [run.work_queue_name for run in result.runs] == [f"host-{h}" for h in HOSTS]
    assert sorted(server.attempts.values()) == [3, 3, 3]
    # Prefect's own back-off would sleep 2 s then 4 s for each host: 18 s.
    assert took < 5, f"{took:.1f}s"


def test_a_server_locked_for_good_answers_503_within_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prewarm, "CREATE_BUDGET_S", 1.5)
    server = LockedServer(busy=lambda attempt: True)
    start = time.monotonic()
    with pytest.raises(httpx.HTTPStatusError) as raised:
        _prewarm(server)
    assert raised.value.response.status_code == 503  # the API answers 503: GitHub may redeliver
    assert time.monotonic() - start < 4
    (attempts,) = server.attempts.values()  # the first host's run: the rest were not tried
    assert attempts > 3


def test_a_refusal_is_not_retried() -> None:
    server = LockedServer(busy=lambda attempt: True, status=409)
    with pytest.raises(httpx.HTTPStatusError) as raised:
        _prewarm(server)
    assert raised.value.response.status_code == 409
    assert list(server.attempts.values()) == [1]


def test_no_live_host_one_run_on_the_shared_queue_also_retried() -> None:
    server = LockedServer(busy=lambda attempt: attempt <= 2, hosts=[])  # no worker heartbeating
    result, took = _prewarm(server)
    assert result.hosts == [] and len(result.runs) == 1 and result.runs[0].work_queue_name is None
    assert list(server.attempts.values()) == [3]
    assert took < 3, f"{took:.1f}s"
