"""`sunbeam-run`'s settings: each variable it reads, read once into one object, and a value it
cannot use refused in one line before anything else happens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sunbeam_agent.launch.settings import LaunchSettings, LaunchSettingsError
from sunbeam_agent.launch.warm import WarmSettings

SUNBEAM_RUN = Path(sys.executable).parent / "sunbeam-run"


def test_every_launcher_variable_lands_in_the_settings() -> None:
    settings = LaunchSettings.from_environment(
        {
            "PREFECT__FLOW_RUN_ID": "run-1",
            "SUNBEAM_CANCEL_POLL_SECONDS": "0.25",
            "SUNBEAM_SCHEMA_TIMEOUT": "30",
            "SUNBEAM_HEARTBEAT_SECONDS": "5",
            "SUNBEAM_RUN_RECORD": "/tmp/record.json",
            "SUNBEAM_DEBUG": "1",
            "SUNBEAM_RUN_REF": "feature",
            "SUNBEAM_RUN_SYNC_ONLY": "true",
            "SUNBEAM_RUN_UNKNOWN": "not a job variable",
            "SUNBEAM_WARM_INTERPRETERS": "0",
            "SUNBEAM_WARM_IDLE_SECONDS": "60",
            "SUNBEAM_WARM_DIR": "/tmp/w",
        }
    )
    assert settings == LaunchSettings(
        flow_run_id="run-1",
        cancel_poll_seconds=0.25,
        schema_timeout=30.0,
        heartbeat_seconds=5.0,
        run_record="/tmp/record.json",
        debug=True,
        run_variables={"ref": "feature", "sync_only": "true"},
        warm=WarmSettings(count=0, idle_seconds=60.0, folder=Path("/tmp/w")),
    )


def test_unset_or_empty_variables_are_the_defaults() -> None:
    empty = {"SUNBEAM_CANCEL_POLL_SECONDS": "", "SUNBEAM_RUN_RECORD": "", "SUNBEAM_DEBUG": ""}
    assert LaunchSettings.from_environment(empty) == LaunchSettings.from_environment({})
    defaults = LaunchSettings.from_environment({})
    assert (defaults.cancel_poll_seconds, defaults.schema_timeout) == (1.0, 120.0)
    assert defaults.flow_run_id is None and defaults.run_record is None and not defaults.debug
    assert defaults.warm == WarmSettings(count=2, idle_seconds=900.0, folder=None)


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf"])
def test_a_bad_number_of_seconds_is_named(value: str) -> None:
    with pytest.raises(LaunchSettingsError, match=r"SUNBEAM_SCHEMA_TIMEOUT.*positive number"):
        LaunchSettings.from_environment({"SUNBEAM_SCHEMA_TIMEOUT": value})


@pytest.mark.parametrize("value", ["many", "-1", "1.5"])
def test_a_bad_count_of_warm_interpreters_is_named(value: str) -> None:
    with pytest.raises(LaunchSettingsError, match=r"SUNBEAM_WARM_INTERPRETERS.*0 or a positive"):
        LaunchSettings.from_environment({"SUNBEAM_WARM_INTERPRETERS": value})


def test_sunbeam_run_refuses_a_bad_setting_in_one_line() -> None:
    env = {**os.environ, "PREFECT__FLOW_RUN_ID": "run-1", "SUNBEAM_CANCEL_POLL_SECONDS": "soon"}
    env.pop("SUNBEAM_DEBUG", None)
    done = subprocess.run(
        [str(SUNBEAM_RUN)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "sunbeam-run: SUNBEAM_CANCEL_POLL_SECONDS='soon' is not a number of seconds: set a "
        "positive number, or unset it for the default (1)"
    ]
