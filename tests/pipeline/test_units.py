"""Configuration, stage selection, telemetry files and provenance fallbacks (no servers)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from sunbeam_pipeline.config import DEFAULT_CONFIG, PROJECT_DIR, load_settings
from sunbeam_pipeline.errors import ConfigError, TelemetryFormatError, TelemetryNotFoundError
from sunbeam_pipeline.provenance import collect_provenance
from sunbeam_pipeline.simulator import simulate, write_simulated_csv
from sunbeam_pipeline.sources import build_source
from sunbeam_pipeline.sources.csv_source import CsvTelemetrySource
from sunbeam_pipeline.stages import resolve_stages
from sunbeam_pipeline.track import Track
from tests.support.pipeline_env import write_config


def test_shipped_config_lists_simulated_events_and_is_found_from_any_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.config_path == DEFAULT_CONFIG == PROJECT_DIR / "sunbeam.toml"
    assert settings.mongo.uri == "mongodb://localhost:27017"
    assert settings.data_dir == PROJECT_DIR / "data" / "telemetry"
    assert len(settings.events) >= 3
    assert all(e.simulate is not None for e in settings.events)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "MONGODB_URI": "mongodb://db.internal:27018",
            "SUNBEAM_MONGO_DB": "results",
            "SUNBEAM_DATA_DIR": str(tmp_path),
        }
    )
    assert settings.mongo.uri == "mongodb://db.internal:27018"
    assert settings.mongo.database == "results"
    assert settings.data_dir == tmp_path


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[track]\nlength_m = 'long'\n", "[track]: length_m must be float, got str"),
        ("[battery]\nvolts = 3\n", "[battery]: unknown key(s) volts"),
        ("[[events]]\nname = 'a/b'\n", "name must be letters, digits"),
        (
            "[[events]]\nname = 'x'\nstart = 2026-01-01T10:00:00Z\nstop = 2026-01-01T09:00:00Z\n",
            "stop must be after start",
        ),
        ("[[events]]\nname = 'x'\nstart = 'soon'\n", "is not an ISO 8601 date-time"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, toml: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=None) as info:
        load_settings(path, environ={})
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(environ={"SUNBEAM_CONFIG": str(tmp_path / "nope.toml")})


def test_stage_selection_adds_dependencies_in_run_order() -> None:
    assert [s.name for s in resolve_stages(["efficiency"])] == [
        "ingress",
        "cleanup",
        "power",
        "localization",
        "efficiency",
    ]
    assert [s.name for s in resolve_stages(None)][-1] == "efficiency"
    with pytest.raises(ConfigError, match="no stages requested"):
        resolve_stages([])


def test_simulated_files_are_deterministic_and_read_back(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path), environ={})
    event = settings.event("Test_Day_2")
    first = write_simulated_csv(event, settings, tmp_path / "a.csv").read_bytes()
    second = write_simulated_csv(event, settings, tmp_path / "b.csv").read_bytes()
    assert first == second

    source = build_source(settings)
    telemetry = source.read(event)  # generates <data_dir>/Test_Day_2.csv on first use
    assert (settings.data_dir / "Test_Day_2.csv").read_bytes() == first
    expected = simulate(event, settings).telemetry
    np.testing.assert_array_equal(telemetry.t, expected.t)
    for key, values in expected.channels.items():
        np.testing.assert_allclose(telemetry.channels[key], values, atol=1e-4, equal_nan=True)


@pytest.mark.parametrize(
    ("csv", "error", "message"),
    [
        (None, TelemetryNotFoundError, "no telemetry file"),
        (
            "time,speed\n2026-07-09T16:00:00.000Z,1.0\n2026-07-09T16:00:01.000Z,fast\n",
            TelemetryFormatError,
            "line 3, column speed: 'fast' is not a number",
        ),
        ("speed\n1.0\n", TelemetryFormatError, "no 'time' column"),
        (
            "time,speed\n2026-07-09T16:00:01.000Z,1\n2026-07-09T16:00:00.000Z,2\n",
            TelemetryFormatError,
            "not strictly ascending",
        ),
    ],
)
def test_csv_source_errors_are_specific(
    tmp_path: Path, csv: str | None, error: type[Exception], message: str
) -> None:
    event = load_settings(write_config(tmp_path), environ={}).event("Test_Day_2")
    if csv is not None:
        (tmp_path / "Test_Day_2.csv").write_text(csv)
    with pytest.raises(error, match=message):
        CsvTelemetrySource(tmp_path).read(event)  # no simulator behind it


def test_track_projection_inverts_position() -> None:
    track = Track("t", 5000.0, 36.99, -86.37)
    s = np.linspace(0.0, 4999.0, 500)
    lat, lon = track.position(s)
    np.testing.assert_allclose(track.project(lat, lon), s, atol=0.01)
    lat2, lon2 = track.position(s + 5000.0)  # the next lap is the same place
    np.testing.assert_allclose(lat2, lat)
    np.testing.assert_allclose(lon2, lon)


def test_provenance_from_agent_environment() -> None:
    p = collect_provenance(
        {"SUNBEAM_REF": "v1.2.0", "SUNBEAM_COMMIT": "abc123", "SUNBEAM_ENV_KEY": "k"}
    )
    assert (p.ref, p.commit, p.env_key, p.flow_run_id) == ("v1.2.0", "abc123", "k", None)


def test_provenance_falls_back_to_git_then_local(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", "-b", "dev-laps", str(repo)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    p = collect_provenance({}, project_dir=repo)
    assert (p.ref, p.commit, p.env_key) == ("dev-laps", head, "local")

    subprocess.run([*git, "checkout", "-q", "--detach"], check=True)
    assert collect_provenance({}, project_dir=repo).ref == "local"

    bare = collect_provenance({}, project_dir=tmp_path / "not-a-repo")
    assert (bare.ref, bare.commit, bare.env_key) == ("local", "unknown", "local")
