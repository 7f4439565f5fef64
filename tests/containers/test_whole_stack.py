"""The whole Compose stack, up for real: `bash .ci/stack-up.sh` once for the module, driven only
through what its users touch (the Sunbeam API, the Prefect API and dashboard, `docker compose`).

Five services plus two agent replicas on the host's network, each on its own loopback port; the
registry services are the stand-ins under container/stand-ins/. The pipeline is this checkout's,
locked against a local index on 127.0.0.1 and served by the script's git daemon. Destructive tests
come last; each leaves the stack healthy for the next.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.containers.dockerkit import ROOT, wait_for
from tests.containers.stack_pipeline import (
    FLOW_FILE,
    Gates,
    flow_importing,
    flow_waiting_at_start,
    gated_sdist,
    pipeline_files,
    with_dependency,
)
from tests.support.pipeline_repo import ProjectRepo
from tests.support.ports import free_port
from tests.support.pyindex import LocalIndex
from tests.support.wheelhouse import build_wheelhouse
from tests.support.wheels import build_wheel

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PROJECT = "sunbeam-wholestack-test"
SERVICES = {"postgres", "prefect-server", "agent", "agent-2", "agent-3", "mongodb", "api"}
AGENTS = ("agent", "agent-2", "agent-3")
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
RUN_TIMEOUT = 300.0
CRASH_BOUND = 100.0  # the crash watch's documented bound with the shipped defaults
# A small slice of the real pipeline: one event, one stage and its upstream stages.
PARAMS = {"events": ["FSGP_2026_Day_3"], "stages": ["power"]}
SMALL = {"events": ["FSGP_2026_Day_3"], "stages": ["ingress"]}  # for the crowd of six


@dataclass
class WholeStack:
    env: dict[str, str]  # the scripts' environment (ports, project, env file)
    prefect_url: str
    api_url: str
    api_key: str
    repo: ProjectRepo
    index: LocalIndex
    gates: Gates

    # ------------------------------------------------------------------ docker compose
    def compose(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["bash", str(ROOT / ".ci/stack-compose.sh"), *args],
            capture_output=True,
            text=True,
            timeout=600,
            env={**self.env, **env},
        )
        if check:
            assert proc.returncode == 0, f"compose {' '.join(args)}:\n{proc.stderr[-3000:]}"
        return proc

    def ps(self) -> dict[str, dict[str, Any]]:
        out = self.compose("ps", "--all", "--format", "json").stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {row["Service"]: row for row in rows}

    def inspect(self, service: str) -> dict[str, Any]:
        cid = self.ps()[service]["ID"]
        out = subprocess.run(
            ["docker", "inspect", cid], capture_output=True, text=True, check=True
        ).stdout
        return json.loads(out)[0]

    def healthy(self, *services: str) -> bool:
        rows = self.ps()
        return all(rows.get(s, {}).get("Health") == "healthy" for s in services)

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", service).stdout

    def agent_of(self, run_id: str) -> str:
        """The agent service whose worker runs this run (from its log). Not Prefect's
        "submitting flow run" line: every agent the run's event woke logs that one."""
        for service in AGENTS:
            if f"Running flow run '{run_id}' here" in self.logs(service):
                return service
        raise AssertionError(f"no agent log mentions run {run_id}")

    # ------------------------------------------------------------------ the API
    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30,
        )

    def start_run(self, ref: str, parameters: dict[str, Any] | None = None) -> str:
        with self.api() as api:
            resp = api.post("/runs", json={"ref": ref, "parameters": parameters or PARAMS})
        assert resp.status_code == 202, resp.text
        return resp.json()["id"]

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self.api() as api:
            resp = api.get(f"/runs/{run_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def wait_final(self, run_id: str, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            try:
                run = self.get_run(run_id)
            except (httpx.HTTPError, AssertionError):
                return None  # the API or Prefect restarting
            return run if run["state"] in FINAL else None

        return wait_for(f"run {run_id} to end", final, timeout, every=1)

    def run_log(self, run_id: str) -> str:
        lines: list[str] = []
        with self.api() as api:
            while True:
                resp = api.get(f"/runs/{run_id}/logs", params={"offset": len(lines)})
                assert resp.status_code == 200, resp.text
                page = [item.get("message", "") for item in resp.json()]
                lines += page
                if len(page) < 200:
                    return "\n".join(lines)

    def wait_for_log(self, run_id: str, needle: str, timeout: float = 60) -> str:
        """The flow's logs reach Prefect in batches, possibly after its final state: wait for one."""
        lines = ""

        def arrived() -> bool:
            nonlocal lines
            lines = self.run_log(run_id)
            return needle in lines

        wait_for(f"a log line {needle!r} of run {run_id}", arrived, timeout, every=1)
        return lines

    def run(self, ref: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
        run_id = self.start_run(ref, parameters)
        run = self.wait_final(run_id)
        assert run["state"] == "COMPLETED", f"{ref}: {run}\n{self.run_log(run_id)[-3000:]}"
        return run

    def health(self) -> httpx.Response:
        with httpx.Client(base_url=self.api_url, timeout=30) as api:
            return api.get("/health")

    def wait_healthy(self, *services: str, timeout: float = 240) -> None:
        wait_for(f"{services} healthy", lambda: self.healthy(*services), timeout, every=2)


def _script_env(root: Path, repo: ProjectRepo) -> dict[str, str]:
    ports = {
        name: str(free_port())
        for name in (
            "PREFECT_PORT",
            "API_PORT",
            "POSTGRES_PORT",
            "MONGO_PORT",
            "GIT_PORT",
            "AGENT_PORT",
            "AGENT_2_PORT",
            "AGENT_3_PORT",
        )
    }
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "SUNBEAM_STACK_ENV_FILE": str(root / "stack.env"),
        "SUNBEAM_STACK_PROJECT": PROJECT,
        "SUNBEAM_STACK_AGENTS": "3",
        "SUNBEAM_STACK_GIT_DIR": str(repo.remote),
        "SUNBEAM_IMAGE": "sunbeam-agent:wholestack-test",
        # Long enough for the gated flow, short enough that a hung stop fails the test quickly.
        "SUNBEAM_STOP_GRACE_PERIOD": "3m",
        "SUNBEAM_STOP_TIMEOUT": "150",
        **{f"SUNBEAM_STACK_{name}": port for name, port in ports.items()},
    }


def _pipeline_repo(root: Path, index: LocalIndex) -> ProjectRepo:
    repo = ProjectRepo(root / "repo")
    files = pipeline_files()
    files["pyproject.toml"] += (
        "\n[tool.uv]\nenvironments = [\"sys_platform == 'linux' and platform_machine == 'x86_64'\"]\n"
    )
    repo.write_project(files)
    repo.lock(index=index.url)
    repo.commit("the Sunbeam pipeline, locked against the local index")
    return repo


def _local_index(root: Path, gates: Gates) -> LocalIndex:
    wheels = build_wheelhouse(root / "wheels", roots=("prefect", "pymongo", "numpy"))
    # Debian 12's Python is 3.11.2, where redis needs async-timeout (the host's 3.11 never did).
    build_wheel(
        wheels,
        "async-timeout",
        "4.0.3",
        files={"async_timeout/__init__.py": "from asyncio import Timeout, timeout\n"},
    )
    build_wheel(wheels, "stack-extra", "1.0")
    gated_sdist(wheels, "stack-slow", "2.0", gates.base_url)
    gated_sdist(wheels, "stack-crowd", "3.0", gates.base_url)
    index = LocalIndex(root / "index").start()
    index.add_all(sorted(wheels.iterdir()))
    return index


@pytest.fixture(scope="module")
def stack(docker_client, tmp_path_factory) -> Iterator[WholeStack]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("whole-stack")
    root.chmod(0o755)  # git daemon and the index serve from here
    gates = Gates().start()
    index = _local_index(root, gates)
    repo = _pipeline_repo(root, index)
    env = _script_env(root, repo)
    try:
        up = subprocess.run(
            ["bash", str(ROOT / ".ci/stack-up.sh")],
            capture_output=True,
            text=True,
            timeout=1200,
            env=env,
        )
        assert up.returncode == 0, f"stack-up failed:\n{up.stderr[-5000:]}"
        last = up.stdout.strip().splitlines()[-3:]
        keys = [line.split("=", 1)[0] for line in last]
        assert keys == ["PREFECT_API_URL", "SUNBEAM_API_URL", "SUNBEAM_API_KEY"], up.stdout
        values = dict(line.split("=", 1) for line in last)
        yield WholeStack(
            env=env,
            prefect_url=values["PREFECT_API_URL"],
            api_url=values["SUNBEAM_API_URL"],
            api_key=values["SUNBEAM_API_KEY"],
            repo=repo,
            index=index,
            gates=gates,
        )
    finally:
        down = subprocess.run(
            ["bash", str(ROOT / ".ci/stack-down.sh")], capture_output=True, text=True, env=env
        )
        index.stop()
        gates.stop()
        assert down.returncode == 0, down.stderr[-3000:]
        assert not (root / "stack.env").exists()


def _image_id(ref: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


# ---------------------------------------------------------------------- 1. up from nothing


def test_up_from_nothing_all_healthy_with_the_nightly_deployment(stack: WholeStack) -> None:
    rows = stack.ps()
    assert set(rows) == SERVICES
    assert {s: rows[s]["Health"] for s in SERVICES} == dict.fromkeys(SERVICES, "healthy")

    health = stack.health()
    assert health.status_code == 200, health.text
    assert health.json()["mongodb"] == "up" and health.json()["prefect"] == "up"

    with httpx.Client(base_url=stack.prefect_url, timeout=30) as prefect:
        found = prefect.post(
            "/deployments/filter", json={"deployments": {"name": {"any_": ["main"]}}}
        ).json()
    assert [d["name"] for d in found] == ["main"]
    crons = [s["schedule"].get("cron") for s in found[0]["schedules"] if s["active"]]
    assert crons == ["0 2 * * *"]
    assert found[0]["job_variables"]["repo_url"].startswith("git://127.0.0.1:")

    # The dashboard serves its UI page (not the API's JSON 404).
    page = httpx.get(stack.prefect_url.removesuffix("/api") + "/", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "<!DOCTYPE html>" in page.text and "/ico/" in page.text


def test_a_missing_required_value_stops_compose_naming_it(stack: WholeStack, tmp_path) -> None:
    full = Path(stack.env["SUNBEAM_STACK_ENV_FILE"]).read_text()
    partial = tmp_path / "partial.env"
    partial.write_text(
        "".join(f"{line}\n" for line in full.splitlines() if "MONGO_PASSWORD=" not in line)
    )
    proc = subprocess.run(
        [
            "docker",
            "compose",
            "--project-name",
            PROJECT,
            "--project-directory",
            str(ROOT),
            "--file",
            str(ROOT / "docker-compose.yml"),
            "--file",
            str(ROOT / "container/stand-ins/docker-compose.harness.yml"),
            "--env-file",
            str(partial),
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    assert proc.returncode != 0
    assert "set MONGO_PASSWORD in .env" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------- 2. a run on main


def test_a_run_on_main_completes_with_results_and_provenance(stack: WholeStack) -> None:
    run = stack.run("main")
    main_sha = stack.repo.git("rev-parse", "main")
    assert run["commit"] == main_sha
    # The API's start commissions main with a prewarm run, so whichever of the two synced first
    # built the env and the other reused it: exactly one build between them.
    with stack.api() as api:
        listed = api.get("/runs", params={"ref": "main"}).json()
    finals = [stack.wait_final(r["id"]) for r in listed]
    assert any(r["prewarm"] for r in finals), finals
    assert sorted(r["built"] is True for r in finals) == [False, True], finals
    with stack.api() as api:
        page = api.get("/results", params={"ref": "main", "stage": "power"}).json()
    names = {item["name"] for item in page["items"]}
    assert {"PackPower", "MotorPower"} <= names, page
    for item in page["items"]:
        prov = item["provenance"]
        assert prov["commit"] == main_sha
        assert prov["env_key"] == run["env_key"]
        assert prov["flow_run_id"] == run["id"]


# ---------------------------------------------------------------------- 3. a new dependency


def test_a_branch_adding_a_package_runs_without_rebuild_or_restart(stack: WholeStack) -> None:
    before = {s: stack.inspect(s) for s in AGENTS}
    image = _image_id(stack.env["SUNBEAM_IMAGE"])
    files = pipeline_files()
    stack.repo.push_branch(
        "feature-extra",
        {
            "pyproject.toml": with_dependency(
                stack.repo.project.joinpath("pyproject.toml").read_text(), "stack-extra"
            ),
            FLOW_FILE: flow_importing(files[FLOW_FILE], "stack_extra"),
        },
        index=stack.index.url,
    )
    run = stack.run("feature-extra")
    assert run["built"] is True and run["ref"] == "feature-extra"
    stack.wait_for_log(run["id"], "imported stack_extra 1.0")
    for service, old in before.items():
        new = stack.inspect(service)
        assert (new["Id"], new["RestartCount"], new["State"]["StartedAt"]) == (
            old["Id"],
            old["RestartCount"],
            old["State"]["StartedAt"],
        ), service
        assert new["Image"] == image, service  # still the stack's one image
    # No image was built: the tag the stack runs still names the same image (the engine is
    # shared, so other images may come and go meanwhile).
    assert _image_id(stack.env["SUNBEAM_IMAGE"]) == image


# ---------------------------------------------------------------------- 4. three agents


def test_six_concurrent_runs_of_a_new_lock_build_one_env_on_several_agents(
    stack: WholeStack,
) -> None:
    stack.repo.push_branch(
        "feature-crowd",
        {
            "pyproject.toml": with_dependency(
                stack.repo.project.joinpath("pyproject.toml").read_text(), "stack-crowd"
            )
        },
        index=stack.index.url,
    )
    # One at a time, each once an agent has taken the previous one: the build waits at the gate,
    # so all six are in flight at once, and the agent that just polled is the last to poll again.
    run_ids: list[str] = []
    for _ in range(6):
        run_ids.append(stack.start_run("feature-crowd", SMALL))
        wait_for(
            "an agent to take the run",
            lambda: stack.get_run(run_ids[-1])["state"] != "SCHEDULED",
            60,
            every=0.5,
        )
    wait_for("the crowd's build", lambda: stack.gates.hits["stack-crowd-build"] >= 1, 120)
    stack.gates.open("stack-crowd-build")
    with ThreadPoolExecutor(6) as pool:
        runs = list(pool.map(stack.wait_final, run_ids))
    assert [r["state"] for r in runs] == ["COMPLETED"] * 6, runs
    assert [r["built"] for r in runs].count(True) == 1, runs
    assert len({r["env_key"] for r in runs}) == 1
    assert stack.gates.hits["stack-crowd-build"] == 1  # one build of the package, ever
    agents = {stack.agent_of(run_id) for run_id in run_ids}
    assert len(agents) > 1, agents


# ---------------------------------------------------------------------- 5. faults


def _push_gated(stack: WholeStack, branch: str, gate: str) -> None:
    flow = pipeline_files()[FLOW_FILE]
    stack.repo.push_branch(
        branch, {FLOW_FILE: flow_waiting_at_start(flow, stack.gates.base_url, gate)}
    )


def test_prefect_server_restart_mid_flow(stack: WholeStack) -> None:
    _push_gated(stack, "gated-restart", "restart")
    before = {s: stack.inspect(s)["RestartCount"] for s in AGENTS}
    run_id = stack.start_run("gated-restart")
    wait_for("the flow to run", lambda: stack.gates.hits["restart"] >= 1, RUN_TIMEOUT)
    stack.compose("restart", "prefect-server")
    stack.wait_healthy("prefect-server")
    stack.gates.open("restart")
    run = stack.wait_final(run_id)
    assert run["state"] in FINAL
    # The agents kept polling across the outage: healthy again, never restarted.
    stack.wait_healthy(*AGENTS)
    assert {s: stack.inspect(s)["RestartCount"] for s in AGENTS} == before
    assert stack.run("main")["cache_hit"] is True


def test_mongodb_restart_gives_503_naming_it_then_recovers(stack: WholeStack) -> None:
    stack.compose("stop", "mongodb")
    try:
        health = stack.health()
        assert health.status_code == 503
        assert health.json()["down"] == ["mongodb"], health.text
        with stack.api() as api:
            results = api.get("/results")
        assert results.status_code == 503 and "MongoDB" in results.json()["detail"]
    finally:
        stack.compose("start", "mongodb")
    wait_for("the API to recover by itself", lambda: stack.health().status_code == 200, 120)
    with stack.api() as api:
        assert api.get("/results", params={"ref": "main"}).json()["total"] > 0


def test_an_agent_killed_mid_sync_is_replaced_and_heals(stack: WholeStack) -> None:
    stack.repo.push_branch(
        "feature-slow",
        {
            "pyproject.toml": with_dependency(
                stack.repo.project.joinpath("pyproject.toml").read_text(), "stack-slow"
            ),
            FLOW_FILE: flow_importing(pipeline_files()[FLOW_FILE], "stack_slow"),
        },
        index=stack.index.url,
    )
    run_id = stack.start_run("feature-slow")
    wait_for("the sync to reach the build", lambda: stack.gates.hits["stack-slow-build"] >= 1, 180)
    service = stack.agent_of(run_id)
    restarts = stack.inspect(service)["RestartCount"]
    # SIGKILL to every process of the agent (the worker, uv, the build), as the OOM killer would.
    # (`docker kill` itself counts as a deliberate stop, so no restart policy would bring it back.)
    kill_all = "import os, signal; os.kill(-1, signal.SIGKILL)"
    stack.compose("exec", "-T", service, "python3", "-c", kill_all, check=False)
    wait_for(
        "the restart policy to replace the agent",
        lambda: stack.inspect(service)["RestartCount"] == restarts + 1,
        60,
    )
    stack.gates.open("stack-slow-build")
    stack.wait_healthy(service)
    run = stack.run("feature-slow")
    assert run["built"] is True or run["healed"] is True, run
    stack.wait_for_log(run["id"], "imported stack_slow 2.0")
    # The killed run is not left Running: the pool's crash watch ends it Crashed within the
    # shipped bound (docs/scale-out.md), counted from the kill, which is behind us by now.
    killed = stack.wait_final(run_id, timeout=CRASH_BOUND)
    assert killed["state"] == "CRASHED", killed
    listing = stack.compose("exec", "-T", service, "ls", "-A", "/cache/envs").stdout
    assert ".tmp-" not in listing, listing


def test_stopping_an_agent_lets_its_flow_finish_and_exits_zero(stack: WholeStack) -> None:
    _push_gated(stack, "gated-stop", "stop")
    run_id = stack.start_run("gated-stop")
    wait_for("the flow to run", lambda: stack.gates.hits["stop"] >= 1, RUN_TIMEOUT)
    service = stack.agent_of(run_id)
    stop = subprocess.Popen(
        ["bash", str(ROOT / ".ci/stack-compose.sh"), "stop", service],
        env=stack.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for("the agent to drain", lambda: "draining the worker" in stack.logs(service), 60)
        assert stop.poll() is None  # still waiting for the running flow
        stack.gates.open("stop")
        assert stop.wait(timeout=200) == 0
    finally:
        if stop.poll() is None:
            stop.kill()
    state = stack.inspect(service)["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0, state
    assert stack.wait_final(run_id)["state"] == "COMPLETED"
    stack.compose("start", service)
    stack.wait_healthy(service)


# ---------------------------------------------------------------------- 7. bad configuration


def test_a_wrong_mongo_password_is_named_by_health_without_a_crash_loop(stack: WholeStack) -> None:
    stack.compose("up", "--detach", "--no-deps", "api", MONGO_PASSWORD="not-the-password")
    try:

        def refused() -> dict[str, Any] | None:
            try:
                resp = stack.health()
            except httpx.HTTPError:
                return None  # the new container is still starting
            return resp.json() if resp.status_code == 503 else None

        body = wait_for("health to name MongoDB", refused, 120, every=1)
        assert body["down"] == ["mongodb"] and body["prefect"] == "up"
        assert "authentication failed" in body["reasons"]["mongodb"]
        assert "not-the-password" not in json.dumps(body)
        api = stack.inspect("api")
        assert api["State"]["Status"] == "running" and api["RestartCount"] == 0
        assert "Traceback" not in stack.logs("api")
    finally:
        stack.compose("up", "--detach", "--no-deps", "--wait", "api")
    assert stack.health().status_code == 200


# ---------------------------------------------------------------------- 6. persistence


def test_down_and_up_keeps_runs_deployments_results_and_envs(stack: WholeStack) -> None:
    with stack.api() as api:
        runs_before = {r["id"] for r in api.get("/runs", params={"limit": 200}).json()}
        results_before = api.get("/results", params={"ref": "main"}).json()["total"]
    stack.compose("down")  # volumes stay
    assert stack.ps() == {}
    stack.compose("up", "--detach", "--wait", "--no-build", "--pull", "never")
    with stack.api() as api:
        runs_after = {r["id"] for r in api.get("/runs", params={"limit": 200}).json()}
        assert runs_before <= runs_after
        assert [p["ref"] for p in api.get("/pipelines").json()] == ["main"]
        assert api.get("/results", params={"ref": "main"}).json()["total"] == results_before
    run = stack.run("main")
    assert run["cache_hit"] is True and run["built"] is False
