"""An agent started in the background (`nohup sunbeam-agent &`, a scheduler, a CI runner) keeps
its graceful stop: such a start ignores SIGINT and SIGQUIT (nohup adds SIGHUP), and the worker,
which stops on the SIGINT it sends itself once drained, and the flows it runs must not inherit
that."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from sunbeam_contracts.processes import descendants, pid_alive
from tests.support.agent_stack import Agent, Stack, worker_env
from tests.support.processes import ignored_signals, wait_for

STOP_SIGNALS = {signal.SIGINT, signal.SIGQUIT, signal.SIGTERM}
POOL = "agent-background"


def _signals(mask: str) -> set[signal.Signals]:
    return {s for s in signal.Signals if int(mask, 16) & (1 << (s - 1))}


def test_an_agent_started_with_nohup_runs_flows_that_take_signals_and_drains_on_sigterm(
    stack: Stack, tmp_path: Path
) -> None:
    env = worker_env(stack.server, stack.cache_dir, stack.uv_cache)
    # Long enough that its fallback (interrupt, then SIGKILL) cannot be mistaken for a drain.
    env.update(SUNBEAM_WORK_POOL=POOL, SUNBEAM_STOP_TIMEOUT="60")
    agent = Agent(env, tmp_path / "agent.log").start(background=True)
    assert agent.process is not None
    try:
        kids = descendants(agent.process.pid)
        assert kids, "the agent started no worker"
        # The agent and everything it started take the stop signals; nohup's SIGHUP stays.
        for pid in {agent.process.pid, *kids}:
            assert ignored_signals(pid) & STOP_SIGNALS == set(), pid
            assert signal.SIGHUP in ignored_signals(pid), pid

        # The flow process (sunbeam-run, become Prefect's engine) takes them too.
        out = tmp_path / "flow.json"
        run = stack.run(stack.deployment("background", pool=POOL), {"out": str(out)})
        assert run.state is not None and run.state.is_completed(), run.state
        assert _signals(json.loads(out.read_text())["sig_ign"]) & STOP_SIGNALS == set()

        started = time.monotonic()
        agent.process.send(signal.SIGTERM)
        code = agent.process.wait(timeout=90)
        took = time.monotonic() - started
    finally:
        agent.stop()
    log = agent.tail(20000)
    assert code == 0, log
    assert "still busy" not in log, log  # drained, not stopped by the fallback
    assert took < 30, (took, log)
    wait_for(lambda: not any(pid_alive(k) for k in kids), "the worker exiting", timeout=10)
