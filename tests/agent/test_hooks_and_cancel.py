"""Flow hooks run in the ref's env; cancelling stops a sync promptly or a running flow."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from prefect.states import Cancelling

from tests.support.agent_stack import Stack
from tests.support.processes import wait_for


def _wait_for_file(path: Path, timeout: float = 30) -> dict[str, str]:
    wait_for(path.exists, f"{path} appearing", timeout)
    return json.loads(path.read_text())


def _assert_worker_hook_notice(stack: Stack, run_id: UUID, hook: str) -> None:
    """Prefect's worker-side attempt at the hooks shows as one line, not a traceback."""
    lines = stack.wait_for_log(run_id, f"The on_{hook} hooks run in the ref's environment")
    assert not [line for line in lines if "Runner failed to retrieve flow" in line], lines
    assert not [line for line in lines if "Traceback" in line], lines
    assert not [line for line in lines if "from storage at None" in line], lines


def test_on_crashed_hook_runs_in_the_refs_env(
    stack: Stack, main_deployment: UUID, tmp_path: Path
) -> None:
    out = tmp_path / "crash.json"
    run = stack.run(main_deployment, {"out": str(out), "crash": True})
    assert run.state is not None and run.state.is_crashed(), run.state
    hook = _wait_for_file(Path(f"{out}.crashed"))
    info = json.loads(out.read_text())
    assert hook["python"] == info["python"]  # the flow's env, not the worker's interpreter
    assert hook["python"].startswith(str(stack.cache_dir))
    assert hook["commit"] == info["SUNBEAM_COMMIT"]
    stack.wait_for_log(run.id, "Hook 'on_crashed' finished running successfully")
    _assert_worker_hook_notice(stack, run.id, "crashed")


def test_on_failure_hook_runs(stack: Stack, main_deployment: UUID, tmp_path: Path) -> None:
    out = tmp_path / "fail.json"
    run = stack.run(main_deployment, {"out": str(out), "fail": True})
    assert run.state is not None and run.state.is_failed(), run.state
    assert _wait_for_file(Path(f"{out}.failure"))["python"].startswith(str(stack.cache_dir))


def test_cancel_running_flow_runs_on_cancellation_hook(
    stack: Stack, main_deployment: UUID, tmp_path: Path
) -> None:
    out = tmp_path / "cancel.json"
    run = stack.submit(main_deployment, {"out": str(out), "sleep": 60})
    _wait_for_file(out)  # the flow is running
    stack.client.set_flow_run_state(run.id, Cancelling(), force=True)
    final = stack.wait(run.id, timeout=60)
    assert final.state is not None and final.state.is_cancelled(), final.state
    hook = _wait_for_file(Path(f"{out}.cancellation"))
    assert hook["python"].startswith(str(stack.cache_dir))
    _assert_worker_hook_notice(stack, run.id, "cancellation")


def test_cancel_during_slow_sync_stops_it_promptly(
    stack: Stack, main_deployment: UUID, tmp_path: Path
) -> None:
    with stack.slow_branch(tmp_path, "slow") as index:
        final, elapsed = stack.cancel_mid_build(main_deployment, "slow", index, timeout=30)
    assert final.state is not None and final.state.is_cancelled(), final.state
    assert elapsed < 10, f"cancellation took {elapsed:.1f}s"
    # The flow never started, and no half-built env is left behind.
    assert all(s.name != "Running" for s in stack.client.read_flow_run_states(final.id))
    assert stack.half_built_envs() == []
    stack.wait_for_log(final.id, "cancelled while syncing")
