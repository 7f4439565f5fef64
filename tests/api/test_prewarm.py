"""POST /prewarm: a ref resolved to its commit in the pipeline repository, then prewarmed like a
push (the webhook's per-host code, tests/api/test_hooks.py); the key, bad refs, no repository.
(With a real agent: tests/agent/test_prewarm_endpoint.py.)"""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.support.api_stack import REPO_URL, make_settings, served
from tests.support.mongo import Mongo
from tests.support.prefect_server import PrefectServer


def _remote_commit(ref: str) -> str:
    done = subprocess.run(
        ["git", "ls-remote", REPO_URL, ref], capture_output=True, text=True, check=True
    )
    return done.stdout.split()[0]


@pytest.mark.usefixtures("main_deployment")
def test_prewarm_resolves_the_ref_and_prewarms_its_commit(
    api: httpx.Client, auth: dict[str, str], prefect: PrefectServer
) -> None:
    r = api.post("/prewarm", json={"ref": "feature/solar"}, headers=auth)
    assert r.status_code == 202, r.text
    answer = r.json()
    commit = _remote_commit("refs/heads/feature/solar")
    assert answer["commit"] == commit and answer["ref"] == "feature/solar"
    assert answer["hosts"] == [] and "no live sunbeam agent" in answer["note"]
    (run_id,) = answer["runs"]
    run = prefect.read_flow_run(run_id)
    assert run.job_variables == {"ref": commit, "sync_only": True}
    assert run.labels["sunbeam.pushed_ref"] == "feature/solar"
    # The tag on the same commit, or the commit itself: the same prewarm.
    again = api.post("/prewarm", json={"ref": commit}, headers=auth)
    assert again.status_code == 202 and again.json()["runs"] == answer["runs"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"ref": "no/such-branch"}, 422, "no/such-branch"),
        ({"ref": "bad..ref"}, 422, "ref"),
        ({"ref": "main", "extra": 1}, 422, "extra"),
        ({}, 422, "ref"),
    ],
)
def test_prewarm_refuses_bad_refs_in_one_line(
    api: httpx.Client, auth: dict[str, str], body: dict, status: int, says: str
) -> None:
    r = api.post("/prewarm", json=body, headers=auth)
    assert r.status_code == status, r.text
    assert says in str(r.json()["detail"])


def test_prewarm_needs_the_key_and_a_repository(
    api: httpx.Client, mongo: Mongo, prefect: PrefectServer
) -> None:
    assert api.post("/prewarm", json={"ref": "main"}).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert api.post("/prewarm", json={"ref": "main"}, headers=wrong).status_code == 401
    with served(make_settings(mongo, prefect, pipeline_repo="")) as client:
        r = client.post(
            "/prewarm",
            json={"ref": "main"},
            headers={"Authorization": "Bearer test-api-key-0123456789"},
        )
        assert r.status_code == 503 and "SUNBEAM_PIPELINE_REPO" in r.json()["detail"]
