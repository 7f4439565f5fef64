"""What `sunbeam up` keeps in its state folder: the API key (0600), the URLs for `sunbeam env`,
and the demo's own folder (issue 10.2-10.4)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sunbeam_stack.checkout import default_state_dir
from sunbeam_stack.demo.baseline import compare, read_baseline
from sunbeam_stack.errors import StackError
from sunbeam_stack.local.apikey import ensure_api_key
from sunbeam_stack.local.shell_env import exports
from sunbeam_stack.local.state import Recorded, StackState, me

ROOT = Path(__file__).resolve().parents[2]
SUNBEAM = str(Path(sys.executable).with_name("sunbeam"))


def test_the_api_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key, path, created = ensure_api_key(tmp_path / ".sunbeam")
    assert created and len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, same, created_again = ensure_api_key(tmp_path / ".sunbeam")
    assert (again, same, created_again) == (key, path, False)


def test_env_prints_exports_for_a_running_stack(tmp_path: Path) -> None:
    key, key_file, _ = ensure_api_key(tmp_path)
    urls = {"PREFECT_API_URL": "http://127.0.0.1:4200/api", "SUNBEAM_API_URL": "http://x:1"}
    StackState(me(), [], urls, str(key_file)).write(tmp_path)
    out = exports(tmp_path)
    # What `eval "$(sunbeam env)"` does, in a real shell.
    shell = subprocess.run(
        [
            "bash",
            "-c",
            'eval "$1"; echo "$PREFECT_API_URL $SUNBEAM_API_URL $SUNBEAM_API_KEY"',
            "_",
            out,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout.split() == [urls["PREFECT_API_URL"], urls["SUNBEAM_API_URL"], key]


def test_env_without_a_running_stack_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="start one with `uv run sunbeam up`"):
        exports(tmp_path)
    StackState(Recorded("sunbeam up", os.getpid(), 1)).write(tmp_path)  # a start time not ours
    with pytest.raises(StackError, match="is not running"):
        exports(tmp_path)
    done = subprocess.run(
        [SUNBEAM, "env", "--state-dir", str(tmp_path / "none")], capture_output=True, text=True
    )
    assert done.returncode == 1 and done.stdout == ""
    assert (
        done.stderr.startswith("sunbeam env: no stack recorded")
        and len(done.stderr.splitlines()) == 1
    )


def test_the_demo_keeps_to_its_own_state_folder() -> None:
    up, demo = default_state_dir(ROOT), default_state_dir(ROOT, demo=True)
    assert up == ROOT / ".sunbeam"
    assert demo != up and demo.is_relative_to(up)
    # Its Prefect database and MongoDB data live in it (the stack puts both under state_dir).
    from sunbeam_stack.local.stack import LocalStack, StackConfig, _base_env

    config = StackConfig(state_dir=demo, repo_url="file:///x")
    assert _base_env(config)["PREFECT_HOME"] == str(demo / "prefect")
    assert str(demo / "mongo") in LocalStack(config)._mongo_child().argv


def test_the_demo_headline_quotes_the_saved_original_way_measurement() -> None:
    baseline = read_baseline(ROOT)
    assert baseline is not None
    saved = json.loads((ROOT / "benchmarks/results/dependency_change.json").read_text())
    seconds = sorted(r["seconds_to_flow_running"] for r in saved["runs"]["original"])
    assert baseline.seconds_to_flow_running == seconds[len(seconds) // 2]
    line = compare(4.0, baseline)
    assert f"{seconds[len(seconds) // 2]:.1f}s" in line and "rebuild the image" in line
    assert f"{seconds[len(seconds) // 2] / 4.0:.1f}x" in line


def test_help_mentions_the_api_key_and_env() -> None:
    done = subprocess.run([SUNBEAM, "up", "--help"], capture_output=True, text=True, check=True)
    assert "API key" in done.stdout and "sunbeam env" in done.stdout
    top = subprocess.run([SUNBEAM, "--help"], capture_output=True, text=True, check=True)
    assert "env" in top.stdout
