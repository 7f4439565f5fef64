"""Runs start when they are created, not at the worker's next poll; polling stays the fallback.

The agents here poll their pool every 60 s: Prefect waits that long, ±30 % jitter, between
polls, so a run created after a poll is claimed by polling no sooner than 42 s later. Runs
claimed within seconds, one after another, were claimed because the events stream announced
them. Behind a proxy that refuses websockets the agent says so once and polling carries on.
"""

from __future__ import annotations

import time
from pathlib import Path
from uuid import UUID

from prefect.client.schemas.objects import StateType

from tests.support.agent_stack import Agent, Stack, worker_env
from tests.support.no_websocket_proxy import no_websocket_proxy

LONG_POLL = "60"
# Prefect's poll loop sleeps its interval times a random factor in [0.7, 1.3].
EARLIEST_NEXT_POLL_S = 60 * 0.7
FOLLOWING = "Following new flow runs on the events stream"


def _claimed_after(stack: Stack, run_id: UUID, timeout: float) -> float:
    """Seconds until the run left Scheduled (a worker claimed it); fails after `timeout`."""
    started = time.monotonic()
    while True:
        state = stack.client.read_flow_run(run_id).state
        if state is not None and state.type != StateType.SCHEDULED:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"run {run_id} still {state} after {timeout:.0f}s")
        time.sleep(0.05)


def _agent(stack: Stack, tmp_path: Path, pool: str, **env: str) -> Agent:
    agent_env = worker_env(stack.server, stack.cache_dir, stack.uv_cache)
    agent_env.update(SUNBEAM_WORK_POOL=pool, SUNBEAM_STOP_TIMEOUT="20", **env)
    return Agent(agent_env, tmp_path / f"{pool}.log")


def test_runs_start_when_created_not_at_the_next_poll(stack: Stack, tmp_path: Path) -> None:
    pool = "agent-pickup"
    agent = _agent(stack, tmp_path, pool, PREFECT_WORKER_QUERY_SECONDS=LONG_POLL).start()
    try:
        agent.wait_for_line(FOLLOWING, timeout=60)
        deployment = stack.deployment("pickup", pool=pool)
        runs, pickups = [], []
        for i in range(3):
            run = stack.submit(deployment, {"out": str(tmp_path / f"run-{i}.json")})
            pickups.append(_claimed_after(stack, run.id, timeout=90))
            if i == 0:
                first_claimed = time.monotonic()
            runs.append(run)
        since_first = time.monotonic() - first_claimed
        # The first run may have met the worker's first poll; the next two were created after
        # a poll had claimed the first, so polling alone could not have claimed them yet.
        assert since_first < EARLIEST_NEXT_POLL_S - 5, (pickups, since_first)
        assert max(pickups[1:]) < 10, pickups
        for run in runs:
            final = stack.wait(run.id)
            assert final.state is not None and final.state.is_completed(), final.state
    finally:
        agent.stop()


def test_without_the_events_stream_runs_start_at_the_next_poll(
    stack: Stack, tmp_path: Path
) -> None:
    pool = "agent-no-events"
    with no_websocket_proxy(stack.server.port) as (port, refused):
        agent = _agent(
            stack,
            tmp_path,
            pool,
            PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
            PREFECT_WORKER_QUERY_SECONDS="2",
        ).start()
        try:
            agent.wait_for_line("Cannot follow the Prefect events stream", timeout=60)
            assert any(path.startswith("/api/events/out") for path in refused), refused
            deployment = stack.deployment("no-events", pool=pool)
            run = stack.submit(deployment, {"out": str(tmp_path / "run.json")})
            final = stack.wait(run.id)
            assert final.state is not None and final.state.is_completed(), final.state
            assert FOLLOWING not in agent.tail(10**9)
        finally:
            agent.stop()
