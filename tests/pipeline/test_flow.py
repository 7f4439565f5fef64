"""The run-sunbeam flow end to end, in process, against real MongoDB and Prefect servers."""

from __future__ import annotations

import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from sunbeam_agent.launch.flow_schema import compute_schema
from sunbeam_contracts.naming import ENTRYPOINT
from sunbeam_contracts.parameter_schemas import parameter_names, strict_schema
from sunbeam_pipeline.errors import ConfigError, StagesFailedError, StorageError
from sunbeam_pipeline.flow import run_sunbeam
from sunbeam_pipeline.simulator import simulate, write_csv
from sunbeam_pipeline.sources.csv_source import csv_path
from sunbeam_pipeline.stages import STAGES
from tests.support.pipeline_env import AGENT_ENV, PIPELINE_SRC, CompletedRun, PipelineEnv

EXPECTED = {
    "ingress": {
        "PackVoltage",
        "PackCurrent",
        "MotorCurrent",
        "ArrayPowerA",
        "ArrayPowerB",
        "ArrayPowerC",
        "SpeedMPS",
        "GPSLatitude",
        "GPSLongitude",
    },
    "power": {"PackPower", "MotorPower"},
    "array": {"ArrayPower"},
    "energy": {"IntegratedPackPower", "IntegratedPackCurrent", "SOC"},
    "localization": {"Distance", "LapIndex", "TrackDistance"},
    "efficiency": {"Efficiency5Minute", "EfficiencyLap"},
}
EXPECTED["cleanup"] = EXPECTED["ingress"]


def task_run_states(flow_run_id: uuid.UUID, expected: int) -> dict[str, str]:
    """Task run name -> final state type, once the server has recorded all `expected` runs
    (task run states reach the server as events, shortly after the flow returns)."""
    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            states = {r.name: r.state.type.value for r in runs if r.state and r.state.is_final()}
            if len(states) >= expected or time.monotonic() > deadline:
                return states
            time.sleep(0.2)


def stored_names(db, event: str) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for doc in db.series.find({"event": event}, {"stage": 1, "name": 1}):
        names.setdefault(doc["stage"], set()).add(doc["name"])
    return names


def test_full_run_stores_every_series_of_every_event(completed_run: CompletedRun) -> None:
    db = completed_run.env.db
    summary = completed_run.summary
    for event in ("Test_Day_1", "Test_Day_2"):
        assert summary["stages"][event] == {s.name: "completed" for s in STAGES}
        assert stored_names(db, event) == EXPECTED
        # The simulator wrote the telemetry files the CSV source then read.
        assert csv_path(completed_run.env.data_dir, event).stat().st_size > 0
    assert summary["series_written"] == 2 * sum(len(v) for v in EXPECTED.values())
    assert db.series.count_documents({}) == summary["series_written"]

    for doc in db.series.find({}):
        chunks = list(db.series_chunks.find({k: doc[k] for k in ("ref", "event", "stage", "name")}))
        assert doc["dtype"] == "float64" and doc["units"] and doc["description"]
        assert doc["n_chunks"] == len(chunks) == 1
        n = doc["n_points"]
        assert chunks[0]["n"] == len(chunks[0]["tb"]) // 8 == len(chunks[0]["vb"]) // 8 == n
        assert chunks[0]["t0"] == doc["start"] and chunks[0]["t1"] == doc["end"]


def test_provenance_comes_from_the_agent_environment(completed_run: CompletedRun) -> None:
    flow_run_id = completed_run.summary["flow_run_id"]
    uuid.UUID(flow_run_id)
    provenances = list(completed_run.env.db.series.find({}, {"provenance": 1, "ref": 1}))
    assert provenances
    for doc in provenances:
        p = doc["provenance"]
        assert doc["ref"] == p["ref"] == AGENT_ENV["SUNBEAM_REF"]
        assert p["commit"] == AGENT_ENV["SUNBEAM_COMMIT"]
        assert p["env_key"] == AGENT_ENV["SUNBEAM_ENV_KEY"]
        assert p["flow_run_id"] == flow_run_id
        assert isinstance(p["written_at"], datetime)
    # The recorded flow run is a real run of the run-sunbeam flow on the Prefect server.
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(uuid.UUID(flow_run_id))
        assert client.read_flow(run.flow_id).name == "run-sunbeam"
        assert run.state is not None and run.state.is_completed()


def test_rerun_is_idempotent(pipeline_env: PipelineEnv, prefect_api: None) -> None:
    db = pipeline_env.db
    first = run_sunbeam(events=["Test_Day_2"])
    counts = (db.series.count_documents({}), db.series_chunks.count_documents({}))
    before = {d["name"] + d["stage"]: d for d in db.series.find({})}
    csv_file = csv_path(pipeline_env.data_dir, "Test_Day_2")
    csv_bytes = csv_file.read_bytes()

    second = run_sunbeam(events=["Test_Day_2"])
    assert (db.series.count_documents({}), db.series_chunks.count_documents({})) == counts
    assert csv_file.read_bytes() == csv_bytes  # the existing telemetry was reused, unchanged
    for key in (["ref", "event", "stage", "name"], ["ref", "event", "stage", "name", "chunk"]):
        collection = db.series if len(key) == 4 else db.series_chunks
        groups = collection.aggregate(
            [{"$group": {"_id": {k: f"${k}" for k in key}, "n": {"$sum": 1}}}]
        )
        assert all(g["n"] == 1 for g in groups)
    for doc in db.series.find({}):
        old = before[doc["name"] + doc["stage"]]
        assert doc["n_points"] == old["n_points"]
        assert doc["provenance"]["flow_run_id"] == second["flow_run_id"] != first["flow_run_id"]
        assert doc["provenance"]["written_at"] >= old["provenance"]["written_at"]


def test_a_failed_stage_only_stops_its_dependents(
    pipeline_env: PipelineEnv, prefect_api: None
) -> None:
    # Test_Day_1's logger lost the pack current channel; Test_Day_2 is intact.
    settings = pipeline_env.settings
    telemetry = simulate(settings.event("Test_Day_1"), settings).telemetry
    del telemetry.channels["pack_current"]
    write_csv(telemetry, csv_path(pipeline_env.data_dir, "Test_Day_1"))

    state = run_sunbeam(return_state=True)

    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, StagesFailedError)
    message = str(error)
    assert message.startswith("1 stage run(s) failed: power[Test_Day_1]: MissingChannelError")
    assert "pack_current" in message
    assert "Skipped: energy[Test_Day_1], efficiency[Test_Day_1]" in message
    assert "\n" not in message

    db = pipeline_env.db
    assert set(stored_names(db, "Test_Day_1")) == {"ingress", "cleanup", "array", "localization"}
    assert stored_names(db, "Test_Day_2") == EXPECTED

    # Prefect shows the failure on the power task run of that event, and nowhere else; the
    # skipped stages never became task runs.
    states = task_run_states(state.state_details.flow_run_id, expected=7 + 5)
    assert {n for n, s in states.items() if s == "FAILED"} == {"power[Test_Day_1]"}
    assert "energy[Test_Day_1]" not in states and "efficiency[Test_Day_1]" not in states
    assert states["localization[Test_Day_1]"] == states["efficiency[Test_Day_2]"] == "COMPLETED"


def test_missing_telemetry_without_simulation_fails_ingress(
    tmp_path: Path, pipeline_env: PipelineEnv, prefect_api: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "real.toml"
    config.write_text(
        '[[events]]\nname = "Real_Day"\nstart = 2026-07-08T15:00:00Z\n'
        "stop = 2026-07-08T16:00:00Z\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SUNBEAM_CONFIG", str(config))
    state = run_sunbeam(return_state=True)
    message = str(state.result(raise_on_failure=False))
    assert state.is_failed()
    assert "ingress[Real_Day]: TelemetryNotFoundError: no telemetry file" in message
    assert "Skipped: cleanup[Real_Day]" in message
    assert pipeline_env.db.series.count_documents({}) == 0


def test_selected_stages_run_with_their_dependencies_only(
    pipeline_env: PipelineEnv, prefect_api: None
) -> None:
    summary = run_sunbeam(events=["Test_Day_2"], stages=["array"])
    assert summary["stages"] == {
        "Test_Day_2": {"ingress": "completed", "cleanup": "completed", "array": "completed"}
    }
    assert set(stored_names(pipeline_env.db, "Test_Day_2")) == {"ingress", "cleanup", "array"}
    assert stored_names(pipeline_env.db, "Test_Day_1") == {}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"events": ["No_Such_Day"]}, "unknown event 'No_Such_Day' (configured events: Test_Day_1"),
        ({"stages": ["weather"]}, "unknown stage(s) 'weather' (stages: ingress, cleanup"),
    ],
)
def test_bad_parameters_fail_before_anything_is_written(
    pipeline_env: PipelineEnv, prefect_api: None, kwargs: dict, expected: str
) -> None:
    state = run_sunbeam(**kwargs, return_state=True)
    error = state.result(raise_on_failure=False)
    assert state.is_failed() and isinstance(error, ConfigError)
    assert str(error).startswith(expected)
    assert pipeline_env.db.list_collection_names() == []
    assert not pipeline_env.data_dir.exists()


def test_unreachable_mongo_fails_the_run_without_leaking_credentials(
    pipeline_env: PipelineEnv, prefect_api: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.ports import free_port

    monkeypatch.setenv("MONGODB_URI", f"mongodb://sunbeam:hunter2@127.0.0.1:{free_port()}")
    pipeline_env.config_path.write_text(
        pipeline_env.config_path.read_text() + "\n[mongo]\ntimeout_ms = 300\n"
    )
    started = datetime.now(UTC)
    state = run_sunbeam(return_state=True)
    error = state.result(raise_on_failure=False)
    assert state.is_failed() and isinstance(error, StorageError)
    assert str(error).startswith("MongoDB at mongodb://127.0.0.1:")
    assert "hunter2" not in str(error) and "hunter2" not in (state.message or "")
    assert (datetime.now(UTC) - started).total_seconds() < 30


def test_the_flows_deployment_schema_lists_events_and_stages() -> None:
    """Issue 10.7: what the agent stores on run-sunbeam/main, computed as the agent computes it
    (the env's interpreter, in the project folder, with src/ on PYTHONPATH)."""
    project = PIPELINE_SRC.parent
    env = {**os.environ, "PYTHONPATH": str(PIPELINE_SRC)}
    schema = strict_schema(compute_schema(sys.executable, ENTRYPOINT, str(project), env))
    assert parameter_names(schema) == ["events", "stages"]
    assert schema.get("required", []) == []
    names = {"anyOf": [{"items": {"type": "string"}, "type": "array"}, {"type": "null"}]}
    for name in ("events", "stages"):
        assert schema["properties"][name].items() >= {**names, "default": None}.items()
        assert schema["properties"][name]["description"]  # shown under the field in the dashboard
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"events": ["FSGP_2026_Day_1"], "stages": None})
    assert not validator.is_valid({"evnts": ["FSGP_2026_Day_1"]})
    assert not validator.is_valid({"events": "FSGP_2026_Day_1"})
