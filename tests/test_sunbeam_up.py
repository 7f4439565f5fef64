"""`sunbeam up` as a user runs it: a real subprocess starting real services.

It starts, registers the pipeline deployment against a local git repository, a requested run of
`run-sunbeam/main` completes on its agent, and SIGINT (Ctrl-C) stops every child it started.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from sunbeam_stack.flow_runs import run_and_wait
from sunbeam_stack.processes import descendants
from tests.support.pipeline_repo import ProjectRepo, pyproject
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess, wait_for
from tests.support.wheelhouse import build_wheelhouse

pytestmark = pytest.mark.slow

SUNBEAM = str(Path(sys.executable).with_name("sunbeam"))

FLOW = """
from prefect import flow


@flow(name="run-sunbeam")
def run_sunbeam(events: list[str] | None = None, stages: list[str] | None = None) -> dict:
    return {"events": events, "stages": stages}
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> ProjectRepo:
    wheelhouse = build_wheelhouse(tmp_path / "wheelhouse", roots=("prefect",))
    repo = ProjectRepo(tmp_path / "repo")
    repo.write_project(
        {
            "pyproject.toml": pyproject("fake-pipeline", ["prefect"]),
            "src/sunbeam_pipeline/__init__.py": "",
            "src/sunbeam_pipeline/flow.py": FLOW,
        }
    )
    repo.lock(wheelhouse)
    repo.commit("fake pipeline")
    return repo


def test_up_runs_a_requested_flow_and_ctrl_c_stops_every_child(
    tmp_path: Path, pipeline_repo: ProjectRepo
) -> None:
    prefect_port = free_port()
    log = tmp_path / "up.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.pop("MONGODB_URI", None)
    env["SUNBEAM_CACHE_DIR"] = str(tmp_path / "cache")
    argv = [SUNBEAM, "up", "--repo", pipeline_repo.url, "--state-dir", str(tmp_path / "state")]
    argv += ["--prefect-port", str(prefect_port), "--api-port", str(free_port())]
    argv += ["--mongo-port", str(free_port()), "--pool", "up-test"]
    up = ManagedProcess("sunbeam up", argv, env, log).start()
    try:
        up.wait_for_line("Press Ctrl-C", timeout=240)
        kids = descendants(up.pid)
        assert len(kids) >= 4, kids  # server, mongo, agent, api (and their helpers)
        logs = tmp_path / "state" / "logs"
        assert {p.name for p in logs.iterdir()} >= {
            "prefect-server.log",
            "mongodb.log",
            "agent.log",
            "api.log",
        }

        report = run_and_wait(
            f"http://127.0.0.1:{prefect_port}/api", "run-sunbeam/main", timeout=240
        )
        assert report.state == "COMPLETED", (report, (logs / "agent.log").read_text()[-3000:])
        assert report.labels["sunbeam.ref"] == "main"

        kids |= descendants(up.pid)
        up.send(signal.SIGINT)
        assert up.wait(timeout=120) == 0, up.tail(2000)
        wait_for(lambda: not any(alive(k) for k in kids), "every child exiting", timeout=10)
        assert "stopped" in up.tail()
    finally:
        # A failed assertion must not leave servers behind: stop `up`, then anything it started.
        leftovers = descendants(up.pid)
        up.stop(timeout=60, signum=signal.SIGINT, group=False)
        for pid in leftovers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
