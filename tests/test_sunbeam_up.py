"""`sunbeam up` as a user runs it: a real subprocess starting real services.

It starts, registers the pipeline deployment against a local git repository, a requested run of
`run-sunbeam/main` completes on its agent, and SIGINT (Ctrl-C) stops every child it started.
Stopping never depends on printing (a dead `| tee`), SIGTERM and SIGHUP stop it too, a stack
left by a `kill -9`ed `sunbeam up` is stopped by the next one, only the agent sees the git
token, the embedded MongoDB server is restarted when it dies, and `sunbeam env` exports the
URLs and the local API key.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sunbeam_agent.launch.warm import live_interpreters
from sunbeam_contracts.processes import descendants, pid_alive
from sunbeam_stack.local.stack import warm_folder
from sunbeam_stack.orchestration.flow_runs import run_and_wait
from tests.support.pipeline_repo import ProjectRepo, pyproject
from tests.support.ports import free_port
from tests.support.processes import (
    ManagedProcess,
    ProcessFailed,
    http_ok,
    ignored_signals,
    wait_for,
)
from tests.support.wheelhouse import build_wheelhouse

pytestmark = pytest.mark.slow

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

SUNBEAM = str(Path(sys.executable).with_name("sunbeam"))

FLOW = """
from prefect import flow


@flow(name="run-sunbeam")
def run_sunbeam(events: list[str] | None = None, stages: list[str] | None = None) -> dict:
    return {"events": events, "stages": stages}
"""


@pytest.fixture(scope="module")
def pipeline_repo(tmp_path_factory: pytest.TempPathFactory) -> ProjectRepo:
    tmp = tmp_path_factory.mktemp("up-repo")
    wheelhouse = build_wheelhouse(tmp / "wheelhouse", roots=("prefect",))
    repo = ProjectRepo(tmp / "repo")
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


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("up-cache")


class Up:
    """One `sunbeam up` with its own ports and state folder."""

    def __init__(self, tmp: Path, repo: ProjectRepo, cache: Path, state: Path, **env: str) -> None:
        self.state = state
        self.prefect_port, self.api_port, self.mongo_port = free_port(), free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        for name in ("MONGODB_URI", "SUNBEAM_API_KEY"):
            self.env.pop(name, None)
        self.env.update(SUNBEAM_CACHE_DIR=str(cache), **env)
        self.repo_url = repo.url
        self.tmp = tmp

    @property
    def argv(self) -> list[str]:
        argv = [SUNBEAM, "up", "--repo", self.repo_url, "--state-dir", str(self.state)]
        argv += ["--prefect-port", str(self.prefect_port), "--api-port", str(self.api_port)]
        return [*argv, "--mongo-port", str(self.mongo_port), "--pool", "up-test"]

    def same_ports_as(self, other: Up) -> Up:
        self.prefect_port, self.api_port = other.prefect_port, other.api_port
        self.mongo_port = other.mongo_port
        return self

    def start(self, name: str, *, pipe: bool = False, background: bool = False) -> ManagedProcess:
        log = self.tmp / f"{name}.log"
        managed = ManagedProcess(f"sunbeam up ({name})", self.argv, self.env, log)
        return managed.start(pipe=pipe, background=background)

    @property
    def own_log(self) -> Path:
        """What `sunbeam up` writes to its state folder whatever happens to its stdout."""
        return self.state / "logs" / "up.log"

    def recorded(self) -> dict[str, int]:
        state = json.loads((self.state / "stack.json").read_text())
        return {c["name"]: c["pid"] for c in state["children"]}


def _wait_own_log(up: Up, proc: ManagedProcess, text: str, timeout: float) -> None:
    proc.wait_until(
        lambda: up.own_log.exists() and text in up.own_log.read_text(errors="replace"),
        f"{text!r} in {up.own_log}",
        timeout,
    )


def _stop_leftovers(proc: ManagedProcess, extra: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    # A failed assertion must not leave servers behind: stop `up`, then anything it started.
    leftovers = descendants(proc.pid) | set(extra)
    proc.stop(timeout=60, signum=signal.SIGINT, group=False)
    for pid in leftovers:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _environ(pid: int) -> str:
    return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")


def test_up_runs_a_requested_flow_and_ctrl_c_stops_every_child(
    tmp_path: Path, pipeline_repo: ProjectRepo, cache_dir: Path
) -> None:
    token = f"tok-{secrets.token_hex(8)}"
    index_password = f"pw-{secrets.token_hex(8)}"  # a private package index's, for the sync
    credentials = {"SUNBEAM_GIT_TOKEN": token, "UV_INDEX_TEAM_PASSWORD": index_password}
    up = Up(tmp_path, pipeline_repo, cache_dir, tmp_path / "state", **credentials)
    proc = up.start("up")
    kids: set[int] = set()
    try:
        proc.wait_for_line("Press Ctrl-C", timeout=240)
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
            f"http://127.0.0.1:{up.prefect_port}/api", "run-sunbeam/main", timeout=240
        )
        assert report.state == "COMPLETED", (report, (logs / "agent.log").read_text()[-3000:])
        assert report.labels["sunbeam.ref"] == "main"
        # Its warm interpreters live in a folder of this stack's own (none of another stack of
        # this user is ever stopped to make room for them).
        own = warm_folder(up.state)
        wait_for(lambda: live_interpreters(own), f"a warm interpreter in {own}", timeout=120)

        _check_only_the_agent_has_the_credentials(up, [token, index_password])
        _check_env_and_api_key(up, proc)
        _check_mongo_is_restarted(up, proc)

        kids |= descendants(proc.pid)
        proc.send(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, proc.tail(2000)
        wait_for(lambda: not any(pid_alive(k) for k in kids), "every child exiting", timeout=10)
        assert "stopped" in proc.tail()
        assert not (up.state / "stack.json").exists()
    finally:
        _stop_leftovers(proc, kids)


def test_up_started_with_nohup_stops_its_services_gracefully(
    tmp_path: Path, pipeline_repo: ProjectRepo, cache_dir: Path
) -> None:
    """`nohup sunbeam up &`: SIGINT and SIGQUIT come ignored (SIGHUP too); SIGINT still stops
    every service within its grace period and none is killed; SIGHUP stays ignored."""
    up = Up(tmp_path, pipeline_repo, cache_dir, tmp_path / "state")
    proc = up.start("up", background=True)
    kids: set[int] = set()
    stop_signals = {signal.SIGINT, signal.SIGQUIT, signal.SIGTERM}
    try:
        proc.wait_for_line("Press Ctrl-C", timeout=240)
        kids = descendants(proc.pid)
        assert len(kids) >= 4, kids
        assert signal.SIGHUP in ignored_signals(proc.pid)  # nohup's wish is kept
        for pid in {proc.pid, *kids}:
            with contextlib.suppress(FileNotFoundError):  # a short-lived helper that ended
                if "sunbeam_agent.launch.heartbeat" in _comm(pid):
                    continue  # a run's heartbeat ignores them on purpose: it ends with the flow
                assert ignored_signals(pid) & stop_signals == set(), (pid, _comm(pid))
        # The deployment's prewarm run ends first: a drain then has nothing to wait for.
        prefect = f"http://127.0.0.1:{up.prefect_port}/api"
        try:
            wait_for(lambda: _runs_final(prefect), "the prewarm run ending", timeout=240)
        except ProcessFailed:
            runs = httpx.post(f"{prefect}/flow_runs/filter", json={}, timeout=10).json()
            said = [(r["name"], r["state"]["type"], r.get("auto_scheduled")) for r in runs]
            raise AssertionError(f"not every run ended: {said}") from None

        proc.send(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, proc.tail(2000)
        wait_for(lambda: not any(pid_alive(k) for k in kids), "every child exiting", timeout=10)
        log = up.own_log.read_text()
        assert "stopped\n" in log and "killed" not in log, log
        assert "still busy" not in (up.state / "logs" / "agent.log").read_text()
    finally:
        _stop_leftovers(proc, kids)


def _runs_final(prefect_api: str) -> bool:
    """Every run the stack made has ended. Runs Prefect's scheduler adds for the nightly cron
    (`auto_scheduled`, due at 02:00) are left out: its minute loop may add them at any time,
    and a Scheduled run never ends here (it made this test fail once in CI)."""
    runs = httpx.post(f"{prefect_api}/flow_runs/filter", json={}, timeout=10).json()
    made = [r for r in runs if not r.get("auto_scheduled")]
    return bool(made) and all(r["state"]["type"] in FINAL for r in made)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "?"


def _check_only_the_agent_has_the_credentials(up: Up, values: list[str]) -> None:
    """Issue 11: under `sunbeam up` only the agent's environment holds SUNBEAM_GIT_TOKEN, and
    likewise a package index's login (UV_INDEX_<NAME>_PASSWORD), which only its sync uses."""
    children = up.recorded()
    assert set(children) == {"prefect-server", "mongodb", "agent", "api"}
    for secret in values:
        holders = {name for name, pid in children.items() if secret in _environ(pid)}
        assert holders == {"agent"}, secret[:5]


def _check_env_and_api_key(up: Up, proc: ManagedProcess) -> None:
    """Issue 10.2/10.4: a local key (0600, never printed); `sunbeam env` exports URLs and key."""
    key_file = up.state / "api-key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert str(key_file) in proc.tail(10**6) and key not in proc.tail(10**6)
    script = (
        f'eval "$("{SUNBEAM}" env --state-dir "{up.state}")" && "{sys.executable}" -c '
        '"import os, httpx; '
        "h = {'Authorization': 'Bearer ' + os.environ['SUNBEAM_API_KEY']}; "
        "r = httpx.post(os.environ['SUNBEAM_API_URL'] + '/runs', json={'ref': 'main'}, headers=h); "
        "print(r.status_code, httpx.get(os.environ['PREFECT_API_URL'] + '/health').status_code)\""
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["202", "200"], done.stderr


def _check_mongo_is_restarted(up: Up, proc: ManagedProcess) -> None:
    """Issue 11: the embedded MongoDB server dies; it comes back, the rest keeps running."""
    before = up.recorded()
    os.kill(before["mongodb"], signal.SIGKILL)
    proc.wait_for_line("MongoDB server restarted", timeout=90)
    after = up.recorded()
    assert after["mongodb"] != before["mongodb"]
    assert {k: v for k, v in after.items() if k != "mongodb"} == {
        k: v for k, v in before.items() if k != "mongodb"
    }
    assert proc.running()
    wait_for(lambda: http_ok(f"http://127.0.0.1:{up.api_port}/health"), "API healthy", 60)


def test_kill_9_leftovers_are_stopped_and_sigterm_stops_all_with_a_dead_pipe(
    tmp_path: Path, pipeline_repo: ProjectRepo, cache_dir: Path
) -> None:
    state = tmp_path / "state"
    first = Up(tmp_path, pipeline_repo, cache_dir, state)
    killed = first.start("first")
    old: set[int] = set()
    second_proc: ManagedProcess | None = None
    try:
        killed.wait_for_line("Press Ctrl-C", timeout=240)
        old = descendants(killed.pid)
        killed.send(signal.SIGKILL)
        killed.wait(timeout=30)
        assert any(pid_alive(p) for p in old), "the children did not outlive `sunbeam up`"

        second = Up(tmp_path, pipeline_repo, cache_dir, state).same_ports_as(first)
        second_proc = second.start("second", pipe=True)
        second_proc.wait_for_line("stopped the stack left behind", timeout=120)
        assert not [p for p in old if pid_alive(p)], "the killed stack's children still run"
        second_proc.wait_for_line("Press Ctrl-C", timeout=240)
        # The documented ports were free again (TIME-WAIT does not count): none moved.
        assert "is taken by" not in second_proc.tail(10**6)

        kids = descendants(second_proc.pid)
        second_proc.cut_pipe()  # the `| tee` died
        second_proc.send(signal.SIGTERM)
        assert second_proc.wait(timeout=120) == 0
        wait_for(lambda: not any(pid_alive(k) for k in kids), "every child exiting", timeout=10)
        _wait_own_log(second, second_proc, "stopped\n", timeout=1)
    finally:
        for pid in old:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        if second_proc is not None:
            _stop_leftovers(second_proc)


def test_sighup_during_start_up_with_a_dead_pipe_stops_what_started(
    tmp_path: Path, pipeline_repo: ProjectRepo, cache_dir: Path
) -> None:
    up = Up(tmp_path, pipeline_repo, cache_dir, tmp_path / "state")
    proc = up.start("up", pipe=True)
    try:
        proc.wait_for_line("✓ Prefect server", timeout=180)
        kids = descendants(proc.pid)
        assert kids
        proc.cut_pipe()
        proc.send(signal.SIGHUP)
        assert proc.wait(timeout=120) == 130
        wait_for(lambda: not any(pid_alive(k) for k in kids), "every child exiting", timeout=10)
        _wait_own_log(up, proc, "interrupted", timeout=1)
    finally:
        _stop_leftovers(proc)
