"""Health, backend outages answered with 503 (and recovered from), disabled features, docs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.api_stack import make_settings, served
from tests.support.mongo import Mongo
from tests.support.ports import free_port
from tests.support.prefect_server import PrefectServer


def test_health_ok(api: httpx.Client) -> None:
    r = api.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "mongodb": "up", "prefect": "up", "down": []}


@pytest.mark.usefixtures("seeded")
def test_mongo_outage_is_503_and_recovers(api: httpx.Client, mongo: Mongo) -> None:
    assert api.get("/results").status_code == 200
    mongo.stop()
    try:
        started = time.monotonic()
        r = api.get("/results")
        assert r.status_code == 503 and "MongoDB" in r.json()["detail"]
        assert time.monotonic() - started < 10
        r = api.get("/results/main/FSGP_2025_Day_1/power/PackPower")
        assert r.status_code == 503 and "Traceback" not in r.text
        health = api.get("/health")
        assert health.status_code == 503 and health.json()["down"] == ["mongodb"]
        assert api.get("/runs").status_code == 200  # Prefect-backed reads still work
    finally:
        mongo.start()  # same port, same data directory
    r = api.get("/results", params={"ref": "main"})
    assert r.status_code == 200 and r.json()["total"] == 3  # the data survived the restart
    assert api.get("/health").status_code == 200


@pytest.fixture
def no_prefect(mongo: Mongo, prefect: PrefectServer) -> Iterator[httpx.Client]:
    # A real fault: nothing listens on this port, so every Prefect call is refused.
    dead = make_settings(mongo, prefect, prefect_api_url=f"http://127.0.0.1:{free_port()}/api")
    with served(dead) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/runs", None),
        ("GET", "/runs/00000000-0000-0000-0000-000000000000", None),
        ("GET", "/pipelines", None),
        ("POST", "/runs", {"ref": "main"}),
        ("POST", "/pipelines", {"ref": "main"}),
    ],
)
def test_prefect_down_is_503(
    no_prefect: httpx.Client, method: str, path: str, body: dict | None
) -> None:
    headers = {"Authorization": "Bearer test-api-key-0123456789"}
    r = no_prefect.request(method, path, json=body, headers=headers)
    assert r.status_code == 503, r.text
    assert "Prefect" in r.json()["detail"] and "Traceback" not in r.text


def test_health_names_prefect_when_down(no_prefect: httpx.Client) -> None:
    r = no_prefect.get("/health")
    assert r.status_code == 503
    assert r.json()["down"] == ["prefect"] and r.json()["mongodb"] == "up"


def test_without_api_key_mutations_are_disabled(mongo: Mongo, prefect: PrefectServer) -> None:
    settings = make_settings(mongo, prefect, api_key="", github_webhook_secret=None)
    with served(settings) as client:
        for method, path, body in [
            ("POST", "/runs", {"ref": "main"}),
            ("POST", "/pipelines", {"ref": "main"}),
            ("DELETE", "/pipelines/main", None),
        ]:
            r = client.request(method, path, json=body, headers={"Authorization": "Bearer x"})
            assert r.status_code == 503
            assert "set SUNBEAM_API_KEY" in r.json()["detail"]
        r = client.post("/hooks/github", content=b"{}", headers={"X-Hub-Signature-256": "sha256=0"})
        assert r.status_code == 503 and "SUNBEAM_GITHUB_WEBHOOK_SECRET" in r.json()["detail"]
        assert client.get("/results").status_code == 200  # reads stay open


def test_commission_without_repo_is_disabled(mongo: Mongo, prefect: PrefectServer) -> None:
    settings = make_settings(mongo, prefect, pipeline_repo="")
    with served(settings) as client:
        r = client.post(
            "/pipelines",
            json={"ref": "main"},
            headers={"Authorization": "Bearer test-api-key-0123456789"},
        )
        assert r.status_code == 503 and "SUNBEAM_PIPELINE_REPO" in r.json()["detail"]


def test_docs_and_unknown_paths(api: httpx.Client) -> None:
    assert api.get("/docs").status_code == 200
    schema = api.get("/openapi.json").json()
    assert {"/health", "/results", "/runs", "/pipelines", "/hooks/github"} <= set(schema["paths"])
    r = api.get("/nope")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    r = api.put("/runs")
    assert r.status_code == 405 and "detail" in r.json()
