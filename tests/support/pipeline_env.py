"""The pipeline tests' harness: per-test pipeline configuration pointing at a real MongoDB wire
server and a real Prefect API (fixtures in tests/pipeline/conftest.py).

The pipeline is its own uv project; its code is imported from pipeline/src exactly as the agent
runs it (on PYTHONPATH, not installed).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pymongo
import pytest

PIPELINE_SRC = Path(__file__).resolve().parents[2] / "pipeline" / "src"
if str(PIPELINE_SRC) not in sys.path:
    sys.path.insert(0, str(PIPELINE_SRC))

from sunbeam_pipeline.config import Settings, load_settings  # noqa: E402

AGENT_ENV = {
    "SUNBEAM_REF": "feature/fast-laps",
    "SUNBEAM_COMMIT": "0123456789abcdef0123456789abcdef01234567",
    "SUNBEAM_ENV_KEY": "5eed" * 16,  # the shape of a real key: 64 hex digits
}

# Short events keep the suite fast but still hold a standing start, several laps and a pit stop
# long enough to cover a whole 5-minute window.
EVENTS_TOML = """
[[events]]
name = "Test_Day_1"
start = 2026-07-08T15:00:00Z
stop = 2026-07-08T15:40:00Z
simulate = { seed = 11, pit_stop_at_s = 1000.0, pit_stop_s = 660.0 }

[[events]]
name = "Test_Day_2"
start = 2026-07-09T16:00:00Z
stop = 2026-07-09T16:20:00Z
simulate = { seed = 12, cloudiness = 0.7, pit_stop_s = 0.0 }
"""


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


@dataclass
class CompletedRun:
    env: PipelineEnv
    summary: dict
