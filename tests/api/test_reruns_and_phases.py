"""Exact reruns, pinned runs, where a run is while the agent syncs it, and unknown query
parameters refused: against the real Prefect server (the agent side: tests/agent/test_reruns.py)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.states import Pending

from tests.support.prefect_server import PrefectServer

COMMIT = "c0ffee" + "1" * 34


def _as_agent(prefect: PrefectServer, run_id: str, labels: dict[str, Any], pending: bool) -> None:
    async def act() -> None:
        async with PrefectClient(api=prefect.api_url) as client:
            if labels:
                await client.update_flow_run_labels(UUID(run_id), labels)
            if pending:
                await client.set_flow_run_state(UUID(run_id), Pending(), force=True)

    asyncio.run(act())


@pytest.mark.usefixtures("main_deployment")
def test_rerun_pins_the_commit_and_latest_is_a_choice(
    api: httpx.Client, auth: dict[str, str], prefect: PrefectServer
) -> None:
    body = {"ref": "feature/solar", "parameters": {"events": ["FSGP_2025_Day_1"]}}
    original = api.post("/runs", json=body, headers=auth).json()["id"]
    _as_agent(prefect, original, {"sunbeam.commit": COMMIT, "sunbeam.env_key": "e" * 64}, False)

    r = api.post(f"/runs/{original}/rerun", headers=auth)
    assert r.status_code == 202, r.text
    assert r.json()["ref"] == "feature/solar" and r.json()["commit"] == COMMIT
    run = prefect.read_flow_run(r.json()["id"])
    assert run.job_variables == {"ref": "feature/solar"}
    assert run.parameters == {"events": ["FSGP_2025_Day_1"]}
    assert {"sunbeam-ref:feature/solar", f"sunbeam-commit:{COMMIT[:8]}"} <= set(run.tags)
    assert run.labels["sunbeam.commit"] == COMMIT
    shown = api.get(f"/runs/{run.id}").json()
    assert (shown["rerun_of"], shown["commit"], shown["phase"]) == (original, COMMIT, "queued")
    assert shown["env_key"] is None  # not known until the agent has synced it

    latest = api.post(f"/runs/{original}/rerun", json={"latest": True}, headers=auth).json()
    newest = prefect.read_flow_run(latest["id"])
    assert latest["commit"] is None and "sunbeam.commit" not in newest.labels
    assert not any(t.startswith("sunbeam-commit:") for t in newest.tags)
    assert newest.labels["sunbeam.rerun_of"] == original


@pytest.mark.usefixtures("main_deployment")
def test_rerun_refusals(api: httpx.Client, auth: dict[str, str]) -> None:
    never_synced = api.post("/runs", json={"ref": "main"}, headers=auth).json()["id"]
    r = api.post(f"/runs/{never_synced}/rerun", headers=auth)
    assert r.status_code == 409 and "never resolved a commit" in r.json()["detail"], r.text
    assert "latest=true" in r.json()["detail"]
    assert api.post(f"/runs/{never_synced}/rerun", json={"latest": True}, headers=auth).is_success
    missing = "00000000-0000-0000-0000-000000000000"
    assert api.post(f"/runs/{missing}/rerun", headers=auth).status_code == 404
    bad = api.post(f"/runs/{never_synced}/rerun", json={"lastest": True}, headers=auth)
    assert bad.status_code == 422
    assert api.post(f"/runs/{never_synced}/rerun").status_code == 401


@pytest.mark.usefixtures("main_deployment")
def test_a_run_on_a_commit_is_filed_under_its_ref(
    api: httpx.Client, auth: dict[str, str], prefect: PrefectServer
) -> None:
    r = api.post("/runs", json={"ref": "main", "commit": COMMIT[:10].upper()}, headers=auth)
    assert r.status_code == 202, r.text
    run = prefect.read_flow_run(r.json()["id"])
    assert run.job_variables == {"ref": "main"}  # the ref, not the SHA, is what the agent reports
    assert run.labels["sunbeam.commit"] == COMMIT[:10]
    assert f"sunbeam-commit:{COMMIT[:8]}" in run.tags
    for bad in ("xyz1234", "123", "a" * 41):
        assert (
            api.post("/runs", json={"ref": "main", "commit": bad}, headers=auth).status_code == 422
        )


@pytest.mark.usefixtures("main_deployment")
def test_get_run_says_where_a_syncing_run_is(
    api: httpx.Client, auth: dict[str, str], prefect: PrefectServer
) -> None:
    run_id = api.post("/runs", json={"ref": "main"}, headers=auth).json()["id"]
    assert api.get(f"/runs/{run_id}").json()["phase"] == "queued"
    _as_agent(prefect, run_id, {}, True)
    assert api.get(f"/runs/{run_id}").json()["phase"] == "syncing"
    building = {"sunbeam.phase": "building", "sunbeam.commit": COMMIT, "sunbeam.env_key": "k" * 64}
    _as_agent(prefect, run_id, building, False)
    shown = api.get(f"/runs/{run_id}").json()
    assert (shown["phase"], shown["commit"], shown["env_key"]) == ("building", COMMIT, "k" * 64)
    _as_agent(prefect, run_id, {"sunbeam.phase": "synced"}, False)
    assert api.get(f"/runs/{run_id}").json()["phase"] == "starting"


@pytest.mark.usefixtures("main_deployment")
def test_unknown_query_parameters_are_refused(api: httpx.Client, auth: dict[str, str]) -> None:
    before = len(api.get("/runs", params={"limit": 200}).json())
    r = api.post("/runs", params={"prewarm": "true"}, json={"ref": "main"}, headers=auth)
    assert r.status_code == 422, r.text
    assert "unknown query parameter 'prewarm'" in r.json()["detail"]
    assert len(api.get("/runs", params={"limit": 200}).json()) == before  # nothing was created
    for path, params in [
        ("/runs", {"limt": "5"}),
        ("/health", {"verbose": "1"}),
        ("/results", {"ref": "main", "evnt": "x"}),
    ]:
        r = api.get(path, params=params)
        assert r.status_code == 422 and "unknown query parameter" in r.json()["detail"], r.text
    page = api.get("/ui", params={"zoom": "2"})
    assert page.status_code == 422 and "text/html" in page.headers["content-type"]
    assert "unknown parameter &#39;zoom&#39;" in page.text
    assert api.get("/runs", params={"limit": "5"}).status_code == 200
