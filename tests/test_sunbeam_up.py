"""`sunbeam up` as a user runs it: a real subprocess starting real services.

It starts, registers the pipeline deployment against a local git repository, a requested run of
`run-sunbeam/main` completes on its agent, and SIGINT (Ctrl-C) stops every child it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sunbeam_stack.flow_runs import run_and_wait
from sunbeam_stack.processes import descendants
from tests.support.pipeline_repo import ProjectRepo, pyproject
from tests.support.ports import free_port
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


def wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"`sunbeam up` never said {text!r}:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


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
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_line(log, "Press Ctrl-C", proc, timeout=240)
        kids = descendants(proc.pid)
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

        kids |= descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, log.read_text()[-2000:]
        deadline = time.monotonic() + 10
        while any(alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [k for k in kids if alive(k)], "children left running after Ctrl-C"
        assert "stopped" in log.read_text()
    finally:
        # A failed assertion must not leave servers behind: stop `up`, then anything it started.
        leftovers = descendants(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in leftovers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
