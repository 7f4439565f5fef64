"""Runs: created on the real Prefect server from run-sunbeam/main, read back with agent labels."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import DeploymentUpdate, LogCreate
from prefect.exceptions import PrefectHTTPStatusError
from prefect.states import Failed, Scheduled
from prefect.utilities.callables import parameter_schema

from sunbeam_api.orchestration.deployments import ensure_pipeline_deployment
from tests.support.api_stack import POOL, REPO_URL
from tests.support.prefect_server import PrefectServer


@pytest.mark.usefixtures("main_deployment")
def test_post_run_creates_flow_run_with_ref_in_job_variables(
    api: httpx.Client, auth: dict[str, str], prefect: PrefectServer
) -> None:
    body = {"ref": "feature/x", "parameters": {"events": ["FSGP_2025_Day_1"], "stages": None}}
    r = api.post("/runs", json=body, headers=auth)
    assert r.status_code == 202, r.text
    created = r.json()
    assert created["ref"] == "feature/x" and created["state"] == "SCHEDULED"

    run = prefect.read_flow_run(created["id"])
    assert run.job_variables == {"ref": "feature/x"}
    assert run.parameters == {"events": ["FSGP_2025_Day_1"], "stages": None}
    assert "sunbeam-ref:feature/x" in run.tags

    listed = api.get("/runs", params={"ref": "feature/x"}).json()
    assert created["id"] in [x["id"] for x in listed]
    assert all(x["ref"] == "feature/x" for x in listed)
    assert api.get("/runs", params={"ref": "other-branch"}).json() == []
    scheduled = api.get("/runs", params={"state": "SCHEDULED", "limit": 200}).json()
    assert created["id"] in [x["id"] for x in scheduled]
    completed = api.get("/runs", params={"state": "COMPLETED"}).json()
    assert created["id"] not in [x["id"] for x in completed]
    assert api.get("/runs", params={"state": "NOPE"}).status_code == 422


@pytest.mark.usefixtures("main_deployment")
def test_get_run_reads_the_agent_labels_and_logs(
    api: httpx.Client, auth: dict[str, str], prefect: PrefectServer
) -> None:
    run_id = api.post("/runs", json={"ref": "v1.2.0"}, headers=auth).json()["id"]
    labels = {
        "sunbeam.ref": "v1.2.0",
        "sunbeam.commit": "c" * 40,
        "sunbeam.env_key": "lock-1234",
        "sunbeam.cache_hit": "true",
        "sunbeam.built": "false",
        "sunbeam.healed": "false",
        "sunbeam.sync_seconds": "1.25",
        "sunbeam.timings": json.dumps({"fetch": 0.5, "checkout": 0.25, "verify": 0.5}),
    }

    async def act_as_agent() -> None:
        # What the agent does while running the flow: record labels, stream logs.
        async with PrefectClient(api=prefect.api_url) as client:
            await client.update_flow_run_labels(UUID(run_id), labels)
            await client.create_logs(
                [
                    LogCreate(
                        name="sunbeam.agent",
                        level=20,
                        message=f"synced step {i}",
                        timestamp=f"2026-01-01T00:00:0{i}Z",
                        flow_run_id=UUID(run_id),
                    )
                    for i in range(3)
                ]
            )

    asyncio.run(act_as_agent())
    run = api.get(f"/runs/{run_id}").json()
    assert run["ref"] == "v1.2.0" and run["commit"] == "c" * 40
    assert run["env_key"] == "lock-1234" and run["cache_hit"] is True and run["built"] is False
    assert run["sync_seconds"] == 1.25 and run["timings"]["checkout"] == 0.25
    assert run["prewarm"] is False

    logs = api.get(f"/runs/{run_id}/logs").json()
    assert [x["message"] for x in logs] == ["synced step 0", "synced step 1", "synced step 2"]
    assert api.get(f"/runs/{run_id}/logs", params={"offset": 2}).json()[0]["message"] == (
        "synced step 2"
    )


def test_unknown_and_malformed_run_ids(api: httpx.Client) -> None:
    r = api.get(f"/runs/{uuid4()}")
    assert r.status_code == 404 and "no pipeline run" in r.json()["detail"]
    assert api.get(f"/runs/{uuid4()}/logs").status_code == 404
    assert api.get("/runs/not-a-uuid").status_code == 422


def test_post_run_needs_the_api_key(api: httpx.Client) -> None:
    assert api.post("/runs", json={"ref": "main"}).status_code == 401
    r = api.post("/runs", json={"ref": "main"}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["detail"] == "invalid API key"
    assert r.headers["www-authenticate"] == "Bearer"
    r = api.post("/runs", json={"ref": "main"}, headers={"Authorization": "Basic dTpw"})
    assert r.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"ref": {"$ne": ""}},
        {"ref": "$where"},
        {"ref": "main", "parameters": {"$where": "1"}},
        {"ref": "main", "parameters": {"events": [{"$gt": ""}]}},
        {"ref": "main", "parameters": []},
        {"ref": "bad..ref"},
        {"ref": "-rf"},
        {"ref": "main", "extra": 1},
        {},
    ],
)
def test_post_run_rejects_bad_input(
    api: httpx.Client, auth: dict[str, str], body: dict, prefect: PrefectServer
) -> None:
    def on_demand() -> set[str]:
        # Prefect's scheduler adds untagged nightly runs in the background; count only ours.
        runs = api.get("/runs", params={"limit": 200}).json()
        return {r["id"] for r in runs if any(t.startswith("sunbeam-ref:") for t in r["tags"])}

    before = on_demand()
    r = api.post("/runs", json=body, headers=auth)
    assert r.status_code == 422, r.text
    assert "Traceback" not in r.text and r.json()["detail"]
    assert on_demand() == before


def test_post_run_without_main_deployment_is_a_clear_409(
    api: httpx.Client, auth: dict[str, str], main_deployment: str
) -> None:
    assert api.delete("/pipelines/main", headers=auth).status_code == 200
    r = api.post("/runs", json={"ref": "main"}, headers=auth)
    assert r.status_code == 409 and "sunbeam deploy" in r.json()["detail"]


def test_scheduled_main_runs_count_as_main(
    api: httpx.Client, auth: dict[str, str], prefect: PrefectServer, main_deployment: str
) -> None:
    async def schedule_like_prefect() -> str:
        # What Prefect's scheduler makes from run-sunbeam/main: no job variables, no tags.
        async with PrefectClient(api=prefect.api_url) as client:
            run = await client.create_flow_run_from_deployment(UUID(main_deployment))
            return str(run.id)

    nightly = asyncio.run(schedule_like_prefect())
    on_demand = api.post("/runs", json={"ref": "main"}, headers=auth).json()["id"]
    other = api.post("/runs", json={"ref": "feature/y"}, headers=auth).json()["id"]

    main_runs = {r["id"]: r for r in api.get("/runs", params={"ref": "main", "limit": 200}).json()}
    assert nightly in main_runs and on_demand in main_runs and other not in main_runs
    assert main_runs[nightly]["ref"] == "main"


def test_future_scheduled_runs_are_listed_only_on_request(
    api: httpx.Client, prefect: PrefectServer, main_deployment: str
) -> None:
    async def schedule_next_week() -> str:
        async with PrefectClient(api=prefect.api_url) as client:
            later = Scheduled(scheduled_time=datetime.now(UTC) + timedelta(days=7))
            run = await client.create_flow_run_from_deployment(UUID(main_deployment), state=later)
            return str(run.id)

    future = asyncio.run(schedule_next_week())
    assert future not in [r["id"] for r in api.get("/runs", params={"limit": 200}).json()]
    params = {"include_future": "true", "state": "SCHEDULED", "ref": "main", "limit": 200}
    assert future in [r["id"] for r in api.get("/runs", params=params).json()]


@pytest.mark.usefixtures("main_deployment")
def test_get_run_says_why_it_failed(
    api: httpx.Client, auth: dict[str, str], prefect: PrefectServer
) -> None:
    run_id = api.post("/runs", json={"ref": "feature/broken"}, headers=auth).json()["id"]
    assert api.get(f"/runs/{run_id}").json()["state_message"] is None
    why = "Sync failed: uv.lock of feature/broken is out of date; run `uv lock` and push"

    async def fail_like_the_agent() -> None:
        async with PrefectClient(api=prefect.api_url) as client:
            await client.set_flow_run_state(UUID(run_id), Failed(message=why), force=True)

    asyncio.run(fail_like_the_agent())
    run = api.get(f"/runs/{run_id}").json()
    assert run["state"] == "FAILED" and run["state_message"] == why
    listed = {r["id"]: r for r in api.get("/runs", params={"ref": "feature/broken"}).json()}
    assert listed[run_id]["state_message"] == why


@pytest.mark.usefixtures("main_deployment")
def test_long_logs_are_read_whole_and_paged_to_the_end(
    api: httpx.Client, auth: dict[str, str], prefect: PrefectServer
) -> None:
    run_id = api.post("/runs", json={"ref": "feature/chatty"}, headers=auth).json()["id"]
    start = datetime(2026, 1, 1, tzinfo=UTC)

    async def log_310_lines() -> None:
        async with PrefectClient(api=prefect.api_url) as client:
            await client.create_logs(
                [
                    LogCreate(
                        name="sunbeam.agent",
                        level=20,
                        message=f"line {i:03d}",
                        timestamp=start + timedelta(milliseconds=i),
                        flow_run_id=UUID(run_id),
                    )
                    for i in range(310)
                ]
            )

    asyncio.run(log_310_lines())
    expected = [f"line {i:03d}" for i in range(310)]
    whole = api.get(f"/runs/{run_id}/logs")
    assert [x["message"] for x in whole.json()] == expected
    assert "x-next-offset" not in whole.headers

    # Paging by the documented header reaches the last line, each line exactly once.
    seen: list[str] = []
    params = {"limit": 120, "offset": 0}
    while True:
        page = api.get(f"/runs/{run_id}/logs", params=params)
        seen += [x["message"] for x in page.json()]
        if "x-next-offset" not in page.headers:
            break
        params["offset"] = int(page.headers["x-next-offset"])
    assert seen == expected
    assert api.get(f"/runs/{run_id}/logs", params={"limit": 10_001}).status_code == 422


def _pipeline_signature(events: list[str] | None = None, stages: list[str] | None = None) -> None:
    """The pipeline flow's signature (pipeline/src/sunbeam_pipeline/flow.py: run_sunbeam).

    events: event names from sunbeam.toml (default: all configured events).
    stages: stage names to run (default: all); their upstream stages run too.
    """


def test_a_deployment_with_the_flow_schema_refuses_typod_parameters(
    api: httpx.Client, auth: dict[str, str], prefect: PrefectServer, main_deployment: str
) -> None:
    schema = parameter_schema(_pipeline_signature).model_dump(mode="json")

    async def deploy(with_schema: dict | None) -> None:
        async with PrefectClient(api=prefect.api_url) as client:
            await ensure_pipeline_deployment(
                client, repo_url=REPO_URL, ref="main", work_pool=POOL, parameter_schema=with_schema
            )

    async def clear_schema() -> None:
        async with PrefectClient(api=prefect.api_url) as client:
            off = DeploymentUpdate(parameter_openapi_schema={}, enforce_parameter_schema=False)
            await client.update_deployment(UUID(main_deployment), off)

    asyncio.run(deploy(schema))
    try:
        asyncio.run(deploy(None))  # re-registering (`sunbeam up`, Compose's API start) keeps it
        r = api.post("/runs", json={"ref": "main", "parameters": {"evnts": ["E1"]}}, headers=auth)
        assert r.status_code == 422, r.text
        assert "evnts" in r.json()["detail"] and "\n" not in r.json()["detail"]
        r = api.post("/runs", json={"ref": "main", "parameters": {"events": "E1"}}, headers=auth)
        assert r.status_code == 422 and "events" in r.json()["detail"], r.text
        ok = {"ref": "feature/x", "parameters": {"events": ["E1"], "stages": None}}
        assert api.post("/runs", json=ok, headers=auth).status_code == 202

        async def through_prefect() -> int:
            async with PrefectClient(api=prefect.api_url) as client:
                try:
                    await client.create_flow_run_from_deployment(
                        UUID(main_deployment), parameters={"stage": ["power"]}
                    )
                except PrefectHTTPStatusError as exc:
                    return exc.response.status_code
                return 201

        assert asyncio.run(through_prefect()) == 409  # Prefect refuses it the same way
    finally:
        asyncio.run(clear_schema())
