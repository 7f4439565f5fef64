"""A worker's runs on a cached env start in the env's warm interpreter (launch/warm.py): real
Prefect server, real `sunbeam` worker, real git. The interpreter on its own, with real processes
and signals, is tested in test_warm_interpreters.py."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from uuid import UUID

from sunbeam_agent.launch.warm import WarmSettings, live_interpreters
from tests.support import agent_flow as flow_source
from tests.support.agent_stack import PREFECT_PIN, MainRun, Stack
from tests.support.pipeline_repo import pyproject
from tests.support.processes import alive, cmdline, wait_for

FORKED = "forked from the env's warm interpreter"
LENT = "'s warm interpreter (this env has none yet"  # "forked from env <key>'s ..."


def _stop_interpreters() -> None:
    folder = WarmSettings().where
    for holder in live_interpreters(folder):
        os.kill(holder.pid, signal.SIGTERM)
    wait_for(lambda: not live_interpreters(folder), "the warm interpreters stopping", 60)


def _infrastructure_pid(stack: Stack, run_id: UUID) -> int:
    return int((stack.client.read_flow_run(run_id).infrastructure_pid or "0").rsplit(":")[-1])


def _until_warm(stack: Stack, deployment: UUID, tmp_path: Path) -> None:
    """Runs until one is forked from the env's own warm interpreter. A run with none ready
    starts cold, or is lent another env's, and starts the env's own, which imports once that
    run's process is gone: each such run is waited out (its process gone, every interpreter
    done importing) before the next. The third run at the latest is warm (the first may have
    built the env, which starts none)."""
    folder = WarmSettings().where
    for i in range(3):
        out = tmp_path / f"warm-up-{i}.json"
        run = stack.run(deployment, {"out": str(out)})
        assert run.state is not None and run.state.is_completed(), run.state
        info = json.loads(out.read_text())
        forked = "_warm_main.py" in cmdline(info["ppid"])  # by its own or a lent one?
        if forked and any(FORKED in line for line in stack.wait_for_log(run.id, "Flow process")):
            return
        pid = int(info["pid"])
        wait_for(lambda pid=pid: not alive(pid), "the run's process ending", 60)
        wait_for(
            lambda: all(h.state not in ("waiting", "importing") for h in live_interpreters(folder)),
            "no interpreter waiting or importing",
            60,
        )
    raise AssertionError("no run was forked from the env's own warm interpreter")


def test_later_runs_start_warm_and_run_their_own_commits_code(
    stack: Stack, main_deployment: UUID, main_run: MainRun, tmp_path: Path
) -> None:
    # Same lock, other code: the env (and so its interpreter) is shared, the code is not.
    files = {"src/demo_pipeline/__init__.py": flow_source.package("warm-2")}
    branch_commit = stack.repo.push_branch("warm-code", files)
    branch = stack.deployment("warm-code", job_variables={"ref": "warm-code"})
    _until_warm(stack, main_deployment, tmp_path)
    infos, runs = [], []
    for i, deployment in enumerate([main_deployment, branch]):
        out = tmp_path / f"run-{i}.json"
        run = stack.run(deployment, {"out": str(out)})
        assert run.state is not None and run.state.is_completed(), run.state
        infos.append(json.loads(out.read_text()))
        runs.append(run)
    assert infos[0]["ppid"] == infos[1]["ppid"], infos  # one warm interpreter, two commits
    assert "_warm_main.py" in cmdline(infos[0]["ppid"])
    assert stack.wait_for_log(runs[0].id, FORKED)
    assert stack.wait_for_log(runs[1].id, FORKED)
    assert infos[0]["variant"] != "warm-2" and infos[1]["variant"] == "warm-2", infos
    assert infos[1]["SUNBEAM_COMMIT"] == branch_commit != infos[0]["SUNBEAM_COMMIT"]
    assert infos[1]["cwd"].startswith(str(stack.cache_dir / "checkouts"))
    assert branch_commit in infos[1]["cwd"]


def test_a_killed_launcher_ends_its_warm_flow_crashed(
    stack: Stack, main_deployment: UUID, main_run: MainRun, tmp_path: Path
) -> None:
    _until_warm(stack, main_deployment, tmp_path)
    out, gate = tmp_path / "run.json", tmp_path / "gate"
    run = stack.submit(main_deployment, {"out": str(out), "gate": str(gate)})
    wait_for(out.exists, "the flow running", 90)
    flow = json.loads(out.read_text())
    launcher = _infrastructure_pid(stack, run.id)
    assert flow["pid"] != launcher and "_warm_main.py" in cmdline(flow["ppid"])
    os.kill(launcher, signal.SIGKILL)
    wait_for(lambda: not alive(flow["pid"]), "the flow of a killed launcher ending", 30)
    final = stack.wait(run.id)
    assert final.state is not None and final.state.is_crashed(), final.state


def test_turned_off_the_launcher_becomes_the_flow(
    stack: Stack, main_deployment: UUID, main_run: MainRun, tmp_path: Path
) -> None:
    cold = stack.deployment("warm-off", job_variables={"env": {"SUNBEAM_WARM_INTERPRETERS": "0"}})
    out = tmp_path / "run.json"
    run = stack.run(cold, {"out": str(out)})
    assert run.state is not None and run.state.is_completed(), run.state
    info = json.loads(out.read_text())
    assert info["pid"] == _infrastructure_pid(stack, run.id)  # exec'd: the same process
    assert not any("warm interpreter" in line for line in stack.logs(run.id))


def test_a_prewarm_starts_the_warm_interpreter_for_the_first_run(
    stack: Stack, tmp_path: Path
) -> None:
    _stop_interpreters()  # none to lend (test below): the prewarm starts the env's own
    files = {"pyproject.toml": pyproject("demo-pipeline", [PREFECT_PIN, "sunbeam-extra"])}
    stack.repo.push_branch("warm-new-lock", files, lock_from=(stack.wheelhouse,))
    deployment = stack.deployment("warm-new-lock", job_variables={"ref": "warm-new-lock"})
    prewarm = stack.run(deployment, job_variables={"sync_only": True})
    assert prewarm.state is not None and prewarm.state.is_completed(), prewarm.state
    out = tmp_path / "run.json"
    run = stack.run(deployment, {"out": str(out)})
    assert run.state is not None and run.state.is_completed(), run.state
    assert json.loads(out.read_text())["extra"] == "1.0"
    # A first run starts cold unless the prewarm started the env's interpreter.
    assert stack.wait_for_log(run.id, FORKED)


def test_a_new_locks_first_run_is_forked_from_another_envs_interpreter(
    stack: Stack, main_deployment: UUID, main_run: MainRun, tmp_path: Path
) -> None:
    _until_warm(stack, main_deployment, tmp_path)  # main's env has a ready interpreter
    deps = [PREFECT_PIN, "sunbeam-extra", "sunbeam-lent"]  # a lock new to the cache
    files = {"pyproject.toml": pyproject("demo-pipeline", deps)}
    stack.repo.push_branch("lent-new-lock", files, lock_from=(stack.wheelhouse,))
    deployment = stack.deployment("lent-new-lock", job_variables={"ref": "lent-new-lock"})
    out = tmp_path / "run.json"
    run = stack.run(deployment, {"out": str(out)})
    assert run.state is not None and run.state.is_completed(), run.state
    info = json.loads(out.read_text())
    main_key = str(main_run.info["SUNBEAM_ENV_KEY"])
    assert info["SUNBEAM_ENV_KEY"] != main_key  # it built an env of its own
    assert info["extra"] == "1.0"  # and imports that env's packages, which main's lacks
    assert (
        info["python"].startswith(str(stack.cache_dir))
        and info["SUNBEAM_ENV_KEY"] in info["python"]
    )
    assert "_warm_main.py" in cmdline(info["ppid"])  # not started cold: forked
    lines = stack.wait_for_log(run.id, LENT)  # by another env's interpreter, lent
    (said,) = [line for line in lines if LENT in line]
    assert info["SUNBEAM_ENV_KEY"][:12] not in said, said
