"""Has my push landed? `GET /refs` and `/ui/refs` against a real git repository and a real
Prefect server: a worker heartbeating as a host, and runs labelled as the agent labels them."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.states import Completed, Failed, Pending, State

from tests.support.api_stack import POOL, REPO_ROOT
from tests.support.gitrepo import PipelineRepo
from tests.support.prefect_server import PrefectServer

HOST = "track-laptop"
STALE = "uv.lock in pipeline is out of date with pyproject.toml: run `uv lock` and commit uv.lock"


def _heads(repo: PipelineRepo) -> dict[str, str]:
    listing = repo.git("ls-remote", "--heads", "origin")
    pairs = (line.split("\t") for line in listing.splitlines())
    return {name.removeprefix("refs/heads/"): sha for sha, name in pairs}


def _agent_did(prefect: PrefectServer, run_id: str, labels: dict[str, Any], state: State) -> None:
    async def act() -> None:
        async with PrefectClient(api=prefect.api_url) as client:
            await client.send_worker_heartbeat(POOL, f"sunbeam-0001@{HOST}", 30)
            await client.update_flow_run_labels(UUID(run_id), labels)
            await client.set_flow_run_state(UUID(run_id), state, force=True)

    asyncio.run(act())


@pytest.mark.usefixtures("main_deployment")
def test_refs_say_where_each_branch_is_and_its_env_on_each_host(
    api: httpx.Client, auth: dict[str, str], prefect: PrefectServer, pipeline_repo: PipelineRepo
) -> None:
    assert pipeline_repo.work == REPO_ROOT / "work"
    heads = _heads(pipeline_repo)
    worker = {"prefect.worker.name": f"sunbeam-0001@{HOST}"}
    cases = [
        ("release/keep", {"sunbeam.phase": "synced", "sunbeam.env_key": "k" * 64}, Completed()),
        ("fix/a.b", {"sunbeam.phase": "building", "sunbeam.env_key": "b" * 64}, Pending()),
        ("feature/solar", {}, Failed(message=STALE)),  # its sync failed: no env
    ]
    runs = {}
    for ref, labels, state in cases:
        run_id = api.post("/runs", json={"ref": ref}, headers=auth).json()["id"]
        _agent_did(prefect, run_id, {**worker, "sunbeam.commit": heads[ref], **labels}, state)
        runs[ref] = run_id

    r = api.get("/refs")
    assert r.status_code == 200, r.text
    rows = {row["ref"]: row for row in r.json()}
    assert set(rows) == set(heads)  # every branch, each at its head
    assert all(rows[ref]["commit"] == sha for ref, sha in heads.items())
    # The newest activity first: the three runs just made, newest first.
    assert [row["ref"] for row in r.json()[:3]] == ["feature/solar", "fix/a.b", "release/keep"]

    def on_host(ref: str) -> dict[str, Any]:
        (found,) = [h for h in rows[ref]["hosts"] if h["host"] == HOST]
        return found

    assert (
        on_host("release/keep")["status"] == "ready" and rows["release/keep"]["env_key"] == "k" * 64
    )
    assert on_host("fix/a.b")["status"] == "building"
    failed = on_host("feature/solar")
    assert (failed["status"], failed["detail"]) == ("failed", STALE)
    assert failed["run_id"] == runs["feature/solar"]
    assert rows["feature/solar"]["last_run"]["id"] == runs["feature/solar"]
    assert rows["feature/solar"]["last_run"]["state"] == "FAILED"
    assert on_host("release/purge")["status"] == "not built"
    assert rows["release/purge"]["env_key"] is None
    assert api.get("/refs", params={"host": HOST}).status_code == 422

    page = api.get("/ui/refs")
    assert page.status_code == 200
    assert f'data-host="{HOST}" data-status="building"' in page.text
    assert "out of date with pyproject.toml" in page.text
    assert "/v2/runs/flow-run/" + runs["feature/solar"] in page.text  # the dashboard's own UI
