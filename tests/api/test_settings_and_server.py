"""Settings come from the environment; `sunbeam-api` serves the app with them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

from sunbeam_api.settings import Settings
from tests.support.mongo import Mongo
from tests.support.ports import free_port
from tests.support.prefect_server import PrefectServer
from tests.support.processes import ManagedProcess

SUNBEAM_API = str(Path(sys.executable).with_name("sunbeam-api"))


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "MONGODB_URI": "mongodb://db.internal:27017/",
        "SUNBEAM_MONGO_DB": "results",
        "PREFECT_API_URL": "http://prefect.internal:4200/api",
        "SUNBEAM_API_KEY": "k3y",
        "SUNBEAM_WORK_POOL": "agents",
        "SUNBEAM_PIPELINE_REPO": "https://git.example/pipeline.git",
        "SUNBEAM_GITHUB_WEBHOOK_SECRET": "",
        "SUNBEAM_API_PORT": "9000",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = Settings()
    assert (s.mongodb_uri, s.mongo_db, s.prefect_api_url) == (
        "mongodb://db.internal:27017/",
        "results",
        "http://prefect.internal:4200/api",
    )
    assert s.api_key is not None and s.api_key.get_secret_value() == "k3y"
    assert "k3y" not in repr(s)  # secrets never show up in logs of the settings
    assert s.work_pool == "agents" and s.pipeline_repo == "https://git.example/pipeline.git"
    assert s.github_webhook_secret is None  # empty means not configured
    assert (s.host, s.port) == ("127.0.0.1", 9000)


def test_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("SUNBEAM_", "MONGODB_", "PREFECT_API_URL")):
            monkeypatch.delenv(key)
    s = Settings()
    assert s.mongo_db == "sunbeam" and s.work_pool == "sunbeam" and s.api_key is None
    assert (s.host, s.port) == ("127.0.0.1", 8080)


def test_sunbeam_api_command_serves_health(
    mongo: Mongo, prefect: PrefectServer, tmp_path: Path
) -> None:
    port = free_port()
    env = prefect.env() | {
        "MONGODB_URI": mongo.uri,
        "SUNBEAM_API_HOST": "127.0.0.1",
        "SUNBEAM_API_PORT": str(port),
    }
    api = ManagedProcess("sunbeam-api", [SUNBEAM_API], env, tmp_path / "api.log").start()
    try:
        api.wait_healthy(f"http://127.0.0.1:{port}/health", timeout=90)
        r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert r.status_code == 200 and r.json()["down"] == []
    finally:
        api.stop(timeout=20)
