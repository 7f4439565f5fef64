"""GitHub push webhook: HMAC-verified, creates sync-only prewarm runs on run-sunbeam/main."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest

from tests.support.api_stack import WEBHOOK_SECRET
from tests.support.prefect_server import PrefectServer

SHA = "0123456789abcdef0123456789abcdef01234567"


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
