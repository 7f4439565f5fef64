"""A `docker` work pool made by `sunbeam-pool create --type docker`, run by prefect-docker's own
worker: each flow run is its own agent-image container running `sunbeam-run`, host networking,
the env cache on one named volume shared by every container.

Main runs; four concurrent runs of a branch with a new dependency make one build (in the shared
volume); a cancel during the sync stops it cleanly; a run whose container is killed mid-sync
ends Crashed within the crash watch's bound (sunbeam_contracts.heartbeats; short here), with or
without its worker, and its env heals on the next run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.states import Cancelling

from sunbeam_contracts.heartbeats import (
    CRASH_AFTER_SECONDS_ENV,
    EVALUATION_SLACK_SECONDS,
    HEARTBEAT_SECONDS_ENV,
)
from tests.containers.dockerkit import wait_for
from tests.containers.probe_pipeline import ENTRYPOINT, FLOW_NAME, probe_project, pyproject
from tests.support.pipeline_repo import ProjectRepo
from tests.support.prefect_server import PrefectServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BIN = Path(sys.executable).parent
RUN_TIMEOUT = 300.0
# The pool's crash watch, short for the test: heartbeats every 2 s, Crashed 10 s after the last.
HEARTBEAT_SECONDS, WINDOW_SECONDS = "2", "10"
BOUND_SECONDS = float(WINDOW_SECONDS) + EVALUATION_SLACK_SECONDS


@dataclass
class DockerPool:
    docker: docker.DockerClient
    image: str
    server: PrefectServer
    client: SyncPrefectClient
    repo: ProjectRepo
    wheelhouse: Path
    shared: Path
    volume: str
    deployment: Any
    worker_log: Path
    pool_name: str
    worker_env: dict[str, str]
    worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        with self.worker_log.open("ab") as out:
            self.worker = subprocess.Popen(
                [
                    str(BIN / "prefect"),
                    "worker",
                    "start",
                    "--pool",
                    self.pool_name,
                    "--type",
                    "docker",
                ],
                env=self.worker_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop_worker(self, signum: int = signal.SIGTERM) -> None:
        if self.worker is None:
            return
        worker, self.worker = self.worker, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signum)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()

    def push_branch_adding(self, branch: str, package: str) -> None:
        """Push a branch off main whose lock adds `package`; the work clone goes back to main."""
        files = {"pyproject.toml": pyproject(["prefect", package], self.wheelhouse)}
        self.repo.push_branch(branch, files, lock_from=(self.wheelhouse,))

    def submit(self, ref: str, module: str = "") -> tuple[FlowRun, Path]:
        out = self.shared / f"out-{secrets.token_hex(4)}.json"
        run = self.client.create_flow_run_from_deployment(
            self.deployment,
            parameters={"out": str(out), "module": module},
            job_variables={"ref": ref},
        )
        return run, out

    def wait(self, run: FlowRun, timeout: float = RUN_TIMEOUT) -> FlowRun:
        def final() -> FlowRun | None:
            current = self.client.read_flow_run(run.id)
            return current if current.state is not None and current.state.is_final() else None

        try:
            return wait_for(f"run {run.id}", final, timeout)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.worker_log.read_text()[-3000:]}") from exc

    def envs_listing(self) -> str:
        """`ls -A /cache/envs` in the shared volume, read by a throwaway container."""
        out = self.docker.containers.run(
            self.image,
            ["ls", "-A", "/cache/envs"],
            volumes={self.volume: {"bind": "/cache"}},
            remove=True,
            network_mode="host",
        )
        return out.decode()

    def running_container(self) -> Any:
        """The one flow-run container running now (one run in flight), found by its volume."""

        def found() -> Any:
            listed = self.docker.containers.list(
                filters={"volume": self.volume, "status": "running"}
            )
            return listed[0] if len(listed) == 1 else None

        return wait_for("the flow run's container", found, 60)


def _labels(run: FlowRun) -> dict[str, str]:
    return {k: str(v) for k, v in (run.labels or {}).items() if k.startswith("sunbeam.")}


@pytest.fixture(scope="module")
def pool(docker_client, agent_image, prefect_server, tmp_path_factory) -> Iterator[DockerPool]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("docker-pool")
    project = probe_project(root)
    repo, wheelhouse, shared = project.repo, project.wheelhouse, project.shared

    image = docker_client.images.get(agent_image).tags[0]  # a name: the worker parses it
    tag = secrets.token_hex(3)
    pool_name, volume = f"docker-pool-{tag}", f"sunbeam-docker-pool-cache-{tag}"
    docker_client.volumes.create(volume)
    env = prefect_server.env()
    env.update(PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_HEARTBEAT_SECONDS="5")
    env[CRASH_AFTER_SECONDS_ENV] = WINDOW_SECONDS  # `sunbeam-pool create` sets up the watch
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    created = subprocess.run(
        [
            str(BIN / "sunbeam-pool"),
            "create",
            pool_name,
            "--type",
            "docker",
            "--image",
            image,
            "--volume",
            f"{volume}:/cache",
            "--repo-url",
            repo.url,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stderr
    client = SyncPrefectClient(prefect_server.api_url)
    pool: DockerPool | None = None
    try:
        with client:
            flow_id = client.create_flow_from_name(FLOW_NAME)
            mounts = [f"{volume}:/cache", *(":".join(bind) for bind in project.binds())]
            deployment = client.create_deployment(
                flow_id=flow_id,
                name=f"docker-{tag}",
                work_pool_name=pool_name,
                entrypoint=ENTRYPOINT,
                job_variables={
                    "project_dir": "pipeline",
                    "volumes": mounts,
                    "env": {HEARTBEAT_SECONDS_ENV: HEARTBEAT_SECONDS},
                },
            )
            pool = DockerPool(
                docker_client,
                image,
                prefect_server,
                client,
                repo,
                wheelhouse,
                shared,
                volume,
                deployment,
                root / "docker-worker.log",
                pool_name,
                env,
            )
            pool.start_worker()
            yield pool
    finally:
        if pool is not None:
            pool.stop_worker()
        for container in docker_client.containers.list(all=True, filters={"volume": volume}):
            container.remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.volumes.get(volume).remove(force=True)
        shutil.rmtree(root, ignore_errors=True)


def test_main_runs_in_its_own_container(pool: DockerPool) -> None:
    import json

    run, out = pool.submit("main")
    final = pool.wait(run)
    assert final.state is not None and final.state.is_completed(), final.state
    info = json.loads(out.read_text())
    assert info["python"].startswith("/cache/envs/"), info  # the env on the shared volume
    assert info["commit"] == _labels(final)["sunbeam.commit"]
    assert final.name.startswith("main@")


def test_four_concurrent_runs_of_a_new_lock_build_once(pool: DockerPool) -> None:
    import json

    pool.push_branch_adding("feature-extra", "probe-extra")
    submitted = [pool.submit("feature-extra", module="probe_extra") for _ in range(4)]
    finals = [pool.wait(run) for run, _ in submitted]
    for final in finals:
        assert final.state is not None and final.state.is_completed(), final.state
    assert [json.loads(out.read_text())["version"] for _, out in submitted] == ["1.0"] * 4
    got = [_labels(f) for f in finals]
    assert sorted(g["sunbeam.built"] for g in got) == ["false", "false", "false", "true"]
    assert len({g["sunbeam.env_key"] for g in got}) == 1


def test_cancel_during_the_sync_stops_it_cleanly(pool: DockerPool) -> None:
    pool.push_branch_adding("feature-slow", "probe-slow")
    started = pool.shared / "build-started"
    run, _ = pool.submit("feature-slow", module="probe_slow")
    wait_for("the sync to reach the package build", started.exists, RUN_TIMEOUT)
    asked = time.monotonic()
    pool.client.set_flow_run_state(run.id, Cancelling(), force=True)
    final = pool.wait(run, timeout=60)
    assert final.state is not None and final.state.is_cancelled(), final.state
    assert time.monotonic() - asked < 20
    assert all(s.name != "Running" for s in pool.client.read_flow_run_states(run.id))
    assert ".tmp-" not in pool.envs_listing()
    started.unlink()


def test_worker_and_container_killed_mid_sync_end_crashed(pool: DockerPool) -> None:
    """The host is gone: prefect-docker's worker and the run's container die together, nobody
    is left to report, and the pool's crash watch sets the run Crashed within the bound."""
    started = pool.shared / "build-started"
    started.unlink(missing_ok=True)
    run, _ = pool.submit("feature-slow", module="probe_slow")
    wait_for("the sync to reach the package build", started.exists, RUN_TIMEOUT)
    container = pool.running_container()
    pool.stop_worker(signal.SIGKILL)
    container.kill()
    died = time.monotonic()
    try:
        killed = pool.wait(run, timeout=BOUND_SECONDS + 30)
    finally:
        pool.start_worker()
    elapsed = time.monotonic() - died
    assert killed.state is not None and killed.state.is_crashed(), killed.state
    assert "No heartbeat" in (killed.state.message or ""), killed.state.message
    assert elapsed <= BOUND_SECONDS, f"Crashed {elapsed:.1f}s after the kill"
    print(f"Crashed {elapsed:.1f}s after the kill (bound {BOUND_SECONDS:g}s)")


def test_container_killed_mid_sync_heals_on_the_next_run(pool: DockerPool) -> None:
    import json

    started = pool.shared / "build-started"
    started.unlink(missing_ok=True)
    run, _ = pool.submit("feature-slow", module="probe_slow")
    wait_for("the sync to reach the package build", started.exists, RUN_TIMEOUT)
    pool.running_container().kill()  # SIGKILL: sunbeam-run and uv die mid-build
    died = time.monotonic()
    killed = pool.wait(run, timeout=BOUND_SECONDS + 30)
    elapsed = time.monotonic() - died
    assert killed.state is not None and killed.state.is_crashed(), killed.state
    # prefect-docker may report the container's exit itself; else the crash watch does it.
    assert elapsed <= BOUND_SECONDS, f"Crashed {elapsed:.1f}s after the kill"
    print(f"Crashed {elapsed:.1f}s after the kill (bound {BOUND_SECONDS:g}s)")

    (pool.shared / "release").write_text("go")
    again, out = pool.submit("feature-slow", module="probe_slow")
    final = pool.wait(again)
    assert final.state is not None and final.state.is_completed(), final.state
    assert json.loads(out.read_text())["version"] == "2.0"
    assert _labels(final)["sunbeam.built"] == "true"
    assert ".tmp-" not in pool.envs_listing()
