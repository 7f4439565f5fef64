"""GitHub push webhook: HMAC-verified, creates sync-only prewarm runs on run-sunbeam/main."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from prefect.client.orchestration import PrefectClient, SyncPrefectClient
from prefect.client.schemas.actions import WorkPoolCreate

from sunbeam_api.orchestration.deployments import ensure_pipeline_deployment
from sunbeam_api.settings import Settings
from tests.support.api_stack import (
    BASE_JOB_TEMPLATE,
    REPO_URL,
    WEBHOOK_SECRET,
    ensure_main,
)
from tests.support.prefect_server import PrefectServer
from tests.support.processes import wait_for

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER_SHA = "89abcdef0123456789abcdef0123456789abcdef"


def _signed(payload: object, secret: str = WEBHOOK_SECRET, event: str = "push") -> dict:
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": event,
        "Content-Type": "application/json",
    }
    return {"content": body, "headers": headers}


@pytest.mark.usefixtures("main_deployment")
def test_push_creates_a_prewarm_run(api: httpx.Client, prefect: PrefectServer) -> None:
    r = api.post("/hooks/github", **_signed({"ref": "refs/heads/feature/x", "after": SHA}))
    assert r.status_code == 200, r.text
    runs = r.json()["runs"]
    assert len(runs) == 1
    assert r.json()["hosts"] == [] and "no live sunbeam agent" in r.json()["note"]
    run = prefect.read_flow_run(runs[0])
    assert run.job_variables == {"ref": SHA, "sync_only": True}
    assert "sunbeam-prewarm" in run.tags
    assert api.get(f"/runs/{runs[0]}").json()["prewarm"] is True

    # GitHub redelivers: the same commit reuses the same prewarm run.
    again = api.post("/hooks/github", **_signed({"ref": "refs/heads/other", "after": SHA}))
    assert again.json()["runs"] == runs


def test_branch_deletion_is_ignored(api: httpx.Client) -> None:
    r = api.post(
        "/hooks/github",
        **_signed({"ref": "refs/heads/gone", "after": "0" * 40, "deleted": True}),
    )
    assert r.status_code == 200 and r.json()["runs"] == [] and "deleted" in r.json()["ignored"]


def test_ping_and_other_events(api: httpx.Client) -> None:
    assert api.post("/hooks/github", **_signed({"zen": "hi"}, event="ping")).json()["runs"] == []
    r = api.post("/hooks/github", **_signed({}, event="issues"))
    assert r.status_code == 200 and "not handled" in r.json()["ignored"]


def test_bad_signatures_are_refused(api: httpx.Client) -> None:
    payload = {"ref": "refs/heads/main", "after": SHA}
    wrong = _signed(payload, secret="not-the-secret")
    r = api.post("/hooks/github", **wrong)
    assert r.status_code == 401 and "signature" in r.json()["detail"]

    tampered = _signed(payload)
    tampered["content"] = tampered["content"].replace(b"main", b"evil")
    assert api.post("/hooks/github", **tampered).status_code == 401

    missing = _signed(payload)
    del missing["headers"]["X-Hub-Signature-256"]
    assert api.post("/hooks/github", **missing).status_code == 401

    sha1_style = _signed(payload)
    sha1_style["headers"]["X-Hub-Signature-256"] = "sha1=abc"
    assert api.post("/hooks/github", **sha1_style).status_code == 401

    # The API key is not a substitute for the signature.
    r = api.post("/hooks/github", json=payload, headers={"Authorization": "Bearer x"})
    assert r.status_code == 401


@pytest.mark.parametrize(
    "payload",
    [
        {"ref": "refs/heads/main", "after": "not-a-sha"},
        {"ref": {"$ne": ""}, "after": SHA},
        {"ref": "refs/heads/bad..ref", "after": SHA},
        {"after": SHA},
        ["not", "an", "object"],
    ],
)
def test_signed_but_malformed_pushes(api: httpx.Client, payload: object) -> None:
    r = api.post("/hooks/github", **_signed(payload))
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


HOSTS_POOL = "sunbeam-hosts-test"


@pytest.fixture
def hosts_pool(settings: Settings) -> Iterator[str]:
    """run-sunbeam/main on a pool of its own (its workers are this test's), then back on POOL."""

    async def move() -> None:
        async with PrefectClient(api=settings.prefect_api_url) as client:
            await client.create_work_pool(
                WorkPoolCreate(name=HOSTS_POOL, type="sunbeam", base_job_template=BASE_JOB_TEMPLATE)
            )
            await ensure_pipeline_deployment(
                client, repo_url=REPO_URL, ref="main", work_pool=HOSTS_POOL
            )

    asyncio.run(move())
    try:
        yield HOSTS_POOL
    finally:
        ensure_main(settings)


def _heartbeat(prefect: PrefectServer, name: str, interval: float = 30) -> None:
    with SyncPrefectClient(api=prefect.api_url) as client:
        client.send_worker_heartbeat(HOSTS_POOL, name, heartbeat_interval_seconds=interval)


def _silent_for(prefect: PrefectServer, name: str) -> float:
    with SyncPrefectClient(api=prefect.api_url) as client:
        (worker,) = [w for w in client.read_workers_for_work_pool(HOSTS_POOL) if w.name == name]
    assert worker.last_heartbeat_time is not None
    return (datetime.now(UTC) - worker.last_heartbeat_time).total_seconds()


def test_push_prewarms_each_live_host_from_the_heartbeats(
    api: httpx.Client, prefect: PrefectServer, hosts_pool: str
) -> None:
    # No worker has ever heartbeated: one run on the shared queue, and the answer says so.
    r = api.post("/hooks/github", **_signed({"ref": "refs/heads/a", "after": OTHER_SHA}))
    assert r.status_code == 200, r.text
    assert r.json()["hosts"] == [] and "no live sunbeam agent" in r.json()["note"]
    (lone,) = r.json()["runs"]
    assert prefect.read_flow_run(lone).work_queue_name == "default"

    # A worker that stopped: silent for more than three of its 1 s heartbeat intervals.
    _heartbeat(prefect, "sunbeam-0a0a0a0a@gone", interval=1)
    wait_for(
        lambda: _silent_for(prefect, "sunbeam-0a0a0a0a@gone") > 3.5,
        "three missed heartbeats",
        timeout=30,
    )
    _heartbeat(prefect, "sunbeam-11111111@alpha")  # two agents sharing alpha's cache
    _heartbeat(prefect, "sunbeam-22222222@alpha")
    _heartbeat(prefect, "sunbeam-33333333@beta")
    _heartbeat(prefect, "ProcessWorker 5d6e7f80")  # a stock worker: no host in its name

    r = api.post("/hooks/github", **_signed({"ref": "refs/heads/feature/x", "after": SHA}))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["hosts"] == ["alpha", "beta"] and answer["note"] is None
    runs = [prefect.read_flow_run(run_id) for run_id in answer["runs"]]
    assert [run.work_queue_name for run in runs] == ["host-alpha", "host-beta"]
    for run, host in zip(runs, ["alpha", "beta"], strict=True):
        assert run.job_variables == {"ref": SHA, "sync_only": True}
        assert run.labels["sunbeam.prewarm_host"] == host
        assert run.labels["sunbeam.pushed_ref"] == "refs/heads/feature/x"
        assert "sunbeam-prewarm" in run.tags
        assert run.work_pool_name == HOSTS_POOL

    # Redelivered: the same runs, one per commit and host.
    again = api.post("/hooks/github", **_signed({"ref": "refs/heads/feature/x", "after": SHA}))
    assert again.json()["runs"] == answer["runs"]
