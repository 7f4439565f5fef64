"""The agent image, built once and run for real: one container, host networking, a cache volume.

A Prefect server runs on the host; the pipeline comes from a bare git repository on the host
(bind-mounted read-only at the same path, file:// URL); every package installs from a local
wheelhouse. The headline: a branch that adds a dependency runs on the same container, same image,
never restarted; a container killed mid-sync heals on the next run; the env cache outlives the
container.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest

from tests.containers.dockerkit import wait_for
from tests.containers.probe_pipeline import ENTRYPOINT, FLOW_NAME, probe_project, pyproject
from tests.support.pipeline_repo import ProjectRepo
from tests.support.ports import free_port
from tests.support.prefect_server import PrefectServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
RUN_TIMEOUT = 240.0


@dataclass
class Stack:
    client: docker.DockerClient
    image: str
    server: PrefectServer
    repo: ProjectRepo
    wheelhouse: Path
    shared: Path  # results and build signals, written by the container
    pool: str
    volume: str
    deployment_id: str = ""
    container: Any = None
    mounts: dict[str, dict[str, str]] = field(default_factory=dict)

    # ------------------------------------------------------------------ the container
    def start_agent(self) -> Any:
        env = {
            "PREFECT_API_URL": self.server.api_url,
            "SUNBEAM_WORK_POOL": self.pool,
            "PREFECT_WORKER_WEBSERVER_PORT": str(free_port()),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "SUNBEAM_STOP_TIMEOUT": "5",
        }
        self.container = self.client.containers.run(
            self.image,
            detach=True,
            name=f"sunbeam-test-agent-{secrets.token_hex(4)}",
            network_mode="host",
            environment=env,
            volumes={self.volume: {"bind": "/cache", "mode": "rw"}, **self.mounts},
            init=True,
        )
        return self.container

    def logs(self) -> str:
        try:
            return self.container.logs().decode(errors="replace")[-4000:]
        except docker.errors.APIError:
            return "(no logs)"

    def worker_healthy(self) -> bool:
        self.container.reload()
        if self.container.status != "running":
            raise AssertionError(f"agent container stopped:\n{self.logs()}")
        code, _ = self.container.exec_run(["python3", "/opt/sunbeam/healthcheck.py"])
        return code == 0

    def remove_agent(self) -> None:
        if self.container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.container.remove(force=True)
            self.container = None

    def push_branch_adding(self, branch: str, package: str) -> None:
        """Push a branch off main whose lock adds `package`; the work clone goes back to main."""
        files = {"pyproject.toml": pyproject(["prefect", package], self.wheelhouse)}
        self.repo.push_branch(branch, files, lock_from=(self.wheelhouse,))

    # ------------------------------------------------------------------ flow runs
    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.api_url, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        # Prefect's own client retries 502/503 (SQLite busy under load); so does this one.
        with self.api() as api:
            for attempt in range(8):
                resp = api.post(path, json=body)
                if resp.status_code not in (502, 503):
                    break
                time.sleep(0.25 * (attempt + 1))
        assert resp.is_success, f"POST {path}: {resp.status_code} {resp.text[:500]}"
        return resp.json()

    def ensure_deployment(self) -> str:
        if self.deployment_id:
            return self.deployment_id
        flow_id = self.post("/flows/", {"name": FLOW_NAME})["id"]
        self.deployment_id = self.post(
            "/deployments/",
            {
                "name": "probe",
                "flow_id": flow_id,
                "work_pool_name": self.pool,
                "entrypoint": ENTRYPOINT,
                "job_variables": {
                    "repo_url": self.repo.url,
                    "ref": "main",
                    "project_dir": "pipeline",
                },
            },
        )["id"]
        return self.deployment_id

    def submit(self, ref: str, module: str = "") -> tuple[str, Path]:
        out = self.shared / f"out-{secrets.token_hex(4)}.json"
        run = self.post(
            f"/deployments/{self.ensure_deployment()}/create_flow_run",
            {"parameters": {"out": str(out), "module": module}, "job_variables": {"ref": ref}},
        )
        return run["id"], out

    def flow_run(self, run_id: str) -> dict[str, Any]:
        with self.api() as api:
            return api.get(f"/flow_runs/{run_id}").json()

    def wait_final(self, run_id: str) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            run = self.flow_run(run_id)
            return run if run["state_type"] in FINAL else None

        try:
            return wait_for(f"flow run {run_id}", final, RUN_TIMEOUT, every=0.5)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\nagent log:\n{self.logs()}") from exc

    def run(self, ref: str, module: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
        run_id, out = self.submit(ref, module)
        run = self.wait_final(run_id)
        assert run["state_type"] == "COMPLETED", (
            f"{ref}: {run['state_type']} {run['state'].get('message')}\n{self.logs()}"
        )
        return run, json.loads(out.read_text())


@pytest.fixture(scope="module")
def stack(docker_client, agent_image, prefect_server, tmp_path_factory) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("stack")
    project = probe_project(root)

    server = prefect_server  # the session's shared server
    volume = f"sunbeam-test-cache-{secrets.token_hex(4)}"
    docker_client.volumes.create(volume)
    st = Stack(
        client=docker_client,
        image=agent_image,
        server=server,
        repo=project.repo,
        wheelhouse=project.wheelhouse,
        shared=project.shared,
        pool=f"stack-{secrets.token_hex(3)}",
        volume=volume,
        mounts={host: {"bind": inside, "mode": mode} for host, inside, mode in project.binds()},
    )
    try:
        st.start_agent()
        wait_for("the agent's worker health endpoint", st.worker_healthy, 120, every=1)
        yield st
    finally:
        st.remove_agent()
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.volumes.get(volume).remove(force=True)
        shutil.rmtree(root, ignore_errors=True)


def labels(run: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in run["labels"].items() if k.startswith("sunbeam.")}


def test_image_is_platform_only_non_root_with_one_cache_volume(docker_client, agent_image) -> None:
    image = docker_client.images.get(agent_image)
    cfg = image.attrs["Config"]
    assert cfg["User"] == "sunbeam"
    assert list(cfg["Volumes"]) == ["/cache"]
    env = dict(item.split("=", 1) for item in cfg["Env"])
    assert env["SUNBEAM_CACHE_DIR"] == "/cache"
    assert env["UV_CACHE_DIR"].startswith("/cache/")
    assert "healthcheck.py" in " ".join(cfg["Healthcheck"]["Test"])
    probe = docker_client.containers.run(
        agent_image,
        [
            "sh",
            "-c",
            "uv --version; python3 -c 'import sunbeam_agent, sunbeam_api, sunbeam_sync'"
            # The pipeline is synced at run time, never baked in (numpy is the API's too now).
            "; python3 -c 'import sunbeam_pipeline' 2>/dev/null && echo PIPELINE || echo platform-only"
            # No worker is running here, so the health check must fail.
            "; python3 /opt/sunbeam/healthcheck.py; echo health-exit=$?",
        ],
        detach=True,
        network_mode="none",
    )
    try:
        probe.wait(timeout=60)
        out = probe.logs().decode()
    finally:
        probe.remove(v=True)  # v: the anonymous /cache volume goes too
    assert "uv 0.13.9" in out
    assert "platform-only" in out, out
    assert "health-exit=1" in out, out


def test_main_runs_on_the_agent(stack: Stack) -> None:
    run, info = stack.run("main")
    assert info["ref"] == "main"
    assert info["python"].startswith("/cache/"), info  # an env from the cache volume
    assert labels(run)["sunbeam.ref"] == "main"


def test_branch_with_a_new_dependency_runs_without_rebuild_or_restart(stack: Stack) -> None:
    stack.run("main")
    container = stack.container
    container.reload()
    before = (container.id, container.image.id, container.attrs["State"]["StartedAt"])

    stack.push_branch_adding("feature-extra", "probe-extra")

    run, info = stack.run("feature-extra", module="probe_extra")
    assert info["version"] == "1.0"
    assert labels(run)["sunbeam.built"] == "true"

    container.reload()
    after = (container.id, container.image.id, container.attrs["State"]["StartedAt"])
    assert after == before
    assert container.attrs["RestartCount"] == 0
    assert before[1] == stack.image


def test_agent_killed_mid_sync_heals_on_the_next_run(stack: Stack) -> None:
    stack.push_branch_adding("feature-slow", "probe-slow")

    started = stack.shared / "build-started"
    run_id, _ = stack.submit("feature-slow", module="probe_slow")
    try:
        wait_for("the sync to reach the package build", started.exists, RUN_TIMEOUT)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{stack.flow_run(run_id)['state']}\n{stack.logs()}") from exc
    stack.container.kill()  # SIGKILL: uv, the build and the worker die mid-sync
    stack.container.reload()
    assert stack.container.status == "exited"

    started.unlink()
    (stack.shared / "release").write_text("go")
    stack.container.start()
    wait_for("the restarted worker", stack.worker_healthy, 120, every=1)

    run, info = stack.run("feature-slow", module="probe_slow")
    assert info["version"] == "2.0"
    assert labels(run)["sunbeam.built"] == "true"
    # Nothing half-built is left behind in the env cache.
    code, listing = stack.container.exec_run(["ls", "-A", "/cache/envs"])
    assert code == 0
    assert ".tmp-" not in listing.decode(), listing.decode()


def test_env_cache_survives_container_recreation(stack: Stack) -> None:
    _, first = stack.run("main")
    stack.remove_agent()
    stack.start_agent()
    wait_for("the new agent's worker", stack.worker_healthy, 120, every=1)
    run, info = stack.run("main")
    assert info["env_key"] == first["env_key"]
    assert labels(run)["sunbeam.cache_hit"] == "true"
    assert labels(run)["sunbeam.built"] == "false"
