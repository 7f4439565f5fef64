"""Fixtures for the pipeline tests: a real MongoDB wire server, a real (temporary) Prefect API,
and per-test pipeline configuration pointing at both.

The pipeline is its own uv project; its code is imported from pipeline/src exactly as the agent
runs it (on PYTHONPATH, not installed).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymongo
import pytest

PIPELINE_SRC = Path(__file__).resolve().parents[2] / "pipeline" / "src"
if str(PIPELINE_SRC) not in sys.path:
    sys.path.insert(0, str(PIPELINE_SRC))

from sunbeam_pipeline.config import Settings, load_settings  # noqa: E402
from tests.support.mongo import mongo_server  # noqa: E402
from tests.support.prefect_server import PrefectServer  # noqa: E402

AGENT_ENV = {
    "SUNBEAM_REF": "feature/fast-laps",
    "SUNBEAM_COMMIT": "0123456789abcdef0123456789abcdef01234567",
    "SUNBEAM_ENV_KEY": "py311-deadbeefcafe",
}

# Short events keep the suite fast but still hold a standing start, several laps and a pit stop
# long enough to cover a whole 5-minute window.
EVENTS_TOML = """
[[events]]
name = "Test_Day_1"
start = 2026-07-08T15:00:00Z
stop = 2026-07-08T15:40:00Z
[events.simulate]
seed = 11
pit_stop_at_s = 1000.0
pit_stop_s = 660.0

[[events]]
name = "Test_Day_2"
start = 2026-07-09T16:00:00Z
stop = 2026-07-09T16:20:00Z
[events.simulate]
seed = 12
cloudiness = 0.7
pit_stop_s = 0.0
"""


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mongo_server(tmp_path_factory.mktemp("mongo")) as server:
        yield server.uri


@pytest.fixture(scope="session")
def prefect_api(prefect_server: PrefectServer) -> Iterator[None]:
    """In-process flow runs report to the session's real Prefect server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        yield


@dataclass
class PipelineEnv:
    settings: Settings
    db: pymongo.database.Database
    config_path: Path
    data_dir: Path


def write_config(directory: Path, events_toml: str = EVENTS_TOML, extra: str = "") -> Path:
    path = directory / "sunbeam.toml"
    path.write_text(f'[source]\ndata_dir = "telemetry"\n{extra}\n{events_toml}', encoding="utf-8")
    return path


def make_env(
    directory: Path,
    mongo_uri: str,
    db_name: str,
    monkeypatch: pytest.MonkeyPatch,
    events_toml: str = EVENTS_TOML,
) -> PipelineEnv:
    directory.mkdir(parents=True, exist_ok=True)
    config_path = write_config(directory, events_toml)
    env = {
        **AGENT_ENV,
        "SUNBEAM_CONFIG": str(config_path),
        "MONGODB_URI": mongo_uri,
        "SUNBEAM_MONGO_DB": db_name,
        "SUNBEAM_DATA_DIR": str(directory / "telemetry"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    return PipelineEnv(settings, client[db_name], config_path, directory / "telemetry")


@pytest.fixture
def pipeline_env(
    tmp_path: Path, mongo_uri: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> PipelineEnv:
    """A fresh database and data directory for one test."""
    return make_env(
        tmp_path,
        mongo_uri,
        f"t_{hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]}",
        monkeypatch,
    )


@dataclass
class CompletedRun:
    env: PipelineEnv
    summary: dict


@pytest.fixture(scope="session")
def completed_run(
    tmp_path_factory: pytest.TempPathFactory, mongo_uri: str, prefect_api: None
) -> CompletedRun:
    """One full pipeline run over both test events, shared by the read-only checks."""
    from sunbeam_pipeline.flow import run_sunbeam

    with pytest.MonkeyPatch.context() as monkeypatch:
        env = make_env(tmp_path_factory.mktemp("run"), mongo_uri, "e2e", monkeypatch)
        summary = run_sunbeam()
    return CompletedRun(env, summary)
