"""Pipelines per ref: commissioned as real Prefect deployments, decommissioned with results kept."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from prefect.client.schemas.responses import DeploymentResponse

from sunbeam_contracts.tags import PREWARM_TAG
from tests.api.seed import seed_series
from tests.support.api_stack import (
    API_KEY,
    DB,
    POOL,
    REPO_ROOT,
    REPO_URL,
    deployment_runs,
    make_settings,
    read_deployment,
    served,
)
from tests.support.mongo import Mongo
from tests.support.prefect_server import PrefectServer


def _deployment(prefect: PrefectServer, name: str) -> DeploymentResponse | None:
    return read_deployment(prefect.api_url, f"run-sunbeam/{name}")


def _git(*args: str) -> str:
    remote = REPO_ROOT / "remote.git"
    return subprocess.run(
        ["git", "-C", str(remote), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_commission_creates_a_deployment_visible_in_prefect(
    api: httpx.Client, auth: dict[str, str], prefect: PrefectServer
) -> None:
    r = api.post("/pipelines", json={"ref": "feature/solar", "cron": "*/30 * * * *"}, headers=auth)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["deployment"] == "run-sunbeam/ref-feature-solar" and body["cron"] == "*/30 * * * *"

    deployment = _deployment(prefect, "ref-feature-solar")
    assert deployment is not None
    assert deployment.job_variables == {
        "repo_url": REPO_URL,
        "ref": "feature/solar",
        "project_dir": "pipeline",
    }
    assert deployment.entrypoint == "src/sunbeam_pipeline/flow.py:run_sunbeam"
    assert deployment.work_pool_name == POOL
    assert "sunbeam-ref:feature/solar" in deployment.tags
    assert [s.schedule.cron for s in deployment.schedules] == ["*/30 * * * *"]

    # Idempotent: commissioning again (without cron) updates the same deployment.
    again = api.post("/pipelines", json={"ref": "feature/solar"}, headers=auth).json()
    assert again["deployment_id"] == body["deployment_id"] and again["cron"] is None

    listed = {p["ref"]: p for p in api.get("/pipelines").json()}
    assert listed["feature/solar"]["deployment_id"] == body["deployment_id"]

    # Issue 10.7: one sync-only run on the deployment's own ref (twice commissioned, same commit),
    # so the agent stores the flow's parameter schema before anyone's first run.
    # Prefect's scheduler may have made runs of the cron meanwhile (its loop ticks once a minute,
    # whenever it likes): those are auto-scheduled, and only what commissioning made counts.
    runs = [r for r in deployment_runs(prefect.api_url, deployment.id) if not r.auto_scheduled]
    assert [(r.job_variables, PREWARM_TAG in r.tags) for r in runs] == [({"sync_only": True}, True)]
    commit = _git("rev-parse", "refs/heads/feature/solar")
    assert runs[0].name == f"prewarm-{commit[:12]}"
    assert api.get(f"/runs/{runs[0].id}").json()["prewarm"] is True


def test_main_gets_the_nightly_schedule(
    api: httpx.Client, auth: dict[str, str], prefect: PrefectServer
) -> None:
    body = api.post("/pipelines", json={"ref": "main"}, headers=auth).json()
    assert body["deployment"] == "run-sunbeam/main" and body["cron"] == "0 2 * * *"
    deployment = _deployment(prefect, "main")
    assert deployment is not None and deployment.tags == []


def test_slug_collision_is_refused(api: httpx.Client, auth: dict[str, str]) -> None:
    assert api.post("/pipelines", json={"ref": "fix/a.b"}, headers=auth).status_code == 201
    r = api.post("/pipelines", json={"ref": "fix-a.b"}, headers=auth)
    assert r.status_code == 409 and "fix/a.b" in r.json()["detail"]
    # ...and decommissioning the other ref does not remove fix/a.b's deployment
    assert api.delete("/pipelines/fix-a.b", headers=auth).status_code == 404
    assert "fix/a.b" in [p["ref"] for p in api.get("/pipelines").json()]


@pytest.mark.usefixtures("seeded")
def test_decommission_keeps_results_unless_purged(
    api: httpx.Client, auth: dict[str, str], mongo: Mongo, prefect: PrefectServer
) -> None:
    client = mongo.client()
    for ref in ("release/keep", "release/purge"):
        seed_series(
            client, DB, ref=ref, event="E1", stage="power", name="PackPower", values=[1.0, 2.0]
        )
        assert api.post("/pipelines", json={"ref": ref}, headers=auth).status_code == 201

    r = api.delete("/pipelines/release/keep", headers=auth)
    assert r.status_code == 200
    assert r.json() == {"ref": "release/keep", "deployment_deleted": True, "purged": None}
    assert _deployment(prefect, "ref-release-keep") is None
    assert client[DB].series.count_documents({"ref": "release/keep"}) == 1

    r = api.delete("/pipelines/release%2Fpurge", params={"purge": "true"}, headers=auth)
    assert r.status_code == 200
    assert r.json()["purged"] == {"series": 1, "chunks": 1}
    assert client[DB].series.count_documents({"ref": "release/purge"}) == 0
    assert client[DB].series_chunks.count_documents({"ref": "release/purge"}) == 0
    assert client[DB].series.count_documents({"ref": "main"}) >= 1  # others untouched
    client.close()

    r = api.delete("/pipelines/release/keep", headers=auth)
    assert r.status_code == 404 and "release/keep" in r.json()["detail"]
    # purge without a deployment still deletes the kept results (and leaves the data set as found)
    r = api.delete("/pipelines/release/keep", params={"purge": "true"}, headers=auth)
    assert r.status_code == 200 and r.json()["deployment_deleted"] is False
    assert r.json()["purged"] == {"series": 1, "chunks": 1}


@pytest.mark.parametrize(
    "body",
    [
        {"ref": "main", "cron": "every day"},
        {"ref": "main", "cron": {"$gt": ""}},
        {"ref": "a b"},
        {"ref": "$where"},
        {"ref": ["main"]},
    ],
)
def test_commission_rejects_bad_input(api: httpx.Client, auth: dict[str, str], body: dict) -> None:
    r = api.post("/pipelines", json=body, headers=auth)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_mutations_refused_without_or_with_wrong_key(api: httpx.Client) -> None:
    assert api.post("/pipelines", json={"ref": "x"}).status_code == 401
    bad = {"Authorization": "Bearer test-api-key-0123456788"}
    assert api.post("/pipelines", json={"ref": "x"}, headers=bad).status_code == 401
    assert api.delete("/pipelines/x", headers=bad).status_code == 401
    assert api.get("/pipelines").status_code == 200  # reads are open


@pytest.mark.parametrize("ref", ["does-not-exist", "feature/typo", "refs/heads/nope"])
def test_commissioning_an_unknown_ref_is_a_422_naming_it(
    api: httpx.Client, auth: dict[str, str], prefect: PrefectServer, ref: str
) -> None:
    r = api.post("/pipelines", json={"ref": ref}, headers=auth)
    assert r.status_code == 422, r.text
    assert repr(ref) in r.json()["detail"] and "push it first" in r.json()["detail"]
    assert ref not in [p["ref"] for p in api.get("/pipelines").json()]
    assert _deployment(prefect, f"ref-{ref.replace('/', '-')}") is None


@pytest.mark.parametrize("ref", ["v1.2.0", "refs/heads/release/keep", "0123456789abcdef"])
def test_tags_full_names_and_shas_can_be_commissioned(
    api: httpx.Client, auth: dict[str, str], ref: str
) -> None:
    r = api.post("/pipelines", json={"ref": ref}, headers=auth)
    assert r.status_code == 201, r.text
    assert api.delete(f"/pipelines/{ref}", headers=auth).status_code == 200


def test_unreachable_repository_is_a_clear_503(mongo: Mongo, prefect: PrefectServer) -> None:
    settings = make_settings(mongo, prefect, pipeline_repo=f"{REPO_URL}-missing")
    with served(settings) as client:
        r = client.post(
            "/pipelines", json={"ref": "main"}, headers={"Authorization": f"Bearer {API_KEY}"}
        )
    assert r.status_code == 503, r.text
    assert "SUNBEAM_PIPELINE_REPO" in r.json()["detail"] and "Traceback" not in r.text
