"""The work pool's crash watch: a Prefect automation that sets a run Crashed when its heartbeats
stop (sunbeam_contracts.heartbeats explains the mechanism; launch/heartbeat.py sends them).

One automation per pool, named after it, made or brought up to date idempotently by whatever
sets the pool up (`sunbeam pool create`, the `sunbeam` worker as it starts). It is Prefect's
documented pattern for zombie flow runs, on public APIs only: a proactive event trigger, after
a heartbeat expect the next one (or a state that ends the run's process) within the window,
per flow run; its action proposes Crashed without force, so a run already final stays as it is.
Only runs of this pool are watched (the heartbeat names the pool as a related resource, as do
Prefect's own state events), so other pools' runs are never touched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sunbeam_agent.errors import AgentError
from sunbeam_contracts.heartbeats import (
    CRASH_AFTER_SECONDS,
    CRASH_AFTER_SECONDS_ENV,
    ENDING_STATES,
    HEARTBEAT_EVENT,
    automation_name,
    seconds_setting,
)


class CrashWatchError(AgentError):
    """SUNBEAM_CRASH_AFTER_SECONDS is invalid; the message says so and how to fix it."""


def crash_after_seconds(environ: Mapping[str, str] = os.environ) -> float:
    try:
        return seconds_setting(environ, CRASH_AFTER_SECONDS_ENV, CRASH_AFTER_SECONDS)
    except ValueError as exc:
        raise CrashWatchError(str(exc)) from exc


def crash_message(seconds: float) -> str:
    return (
        f"No heartbeat for {seconds:.0f}s: the run's process, container, pod or host died "
        "(killed, out of memory, or gone); its env heals on the next run"
    )


def crash_watch(pool: str, pool_id: Any, seconds: float) -> Any:
    """The automation for work pool `pool` (an `AutomationCore`)."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=automation_name(pool),
        # The version of what it watches: a changed window or pool id replaces it.
        description=(
            f"Sets a run of work pool {pool} Crashed when sunbeam-run's heartbeats stop for "
            f"{seconds:g}s (pool id {pool_id}; made by Sunbeam, docs/scale-out.md)"
        ),
        enabled=True,
        trigger=EventTrigger(
            posture=Posture.Proactive,
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={
                "prefect.resource.id": f"prefect.work-pool.{pool_id}",
                "prefect.resource.role": "work-pool",
            },
            after={HEARTBEAT_EVENT},
            expect={HEARTBEAT_EVENT, *(f"prefect.flow-run.{state}" for state in ENDING_STATES)},
            for_each={"prefect.resource.id"},
            threshold=1,
            within=timedelta(seconds=seconds),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED, name="Crashed", message=crash_message(seconds)
            )
        ],
    )


async def ensure_crash_watch(client: Any, pool: str, pool_id: Any, seconds: float) -> str:
    """Make the pool's automation, or bring it up to date; returns "created", "updated" or
    "kept". Copies made by two processes at once are reduced to one."""
    wanted = crash_watch(pool, pool_id, seconds)
    from prefect.exceptions import ObjectNotFound

    # Every process keeps the same one of several copies: the least id.
    found = sorted(await client.read_automations_by_name(wanted.name), key=lambda a: str(a.id))
    if not found:
        await client.create_automation(wanted)
        return "created"
    first, *extra = found
    for copy in extra:
        with contextlib.suppress(ObjectNotFound):  # another process deleted it first
            await client.delete_automation(copy.id)
    if first.description == wanted.description and first.enabled:
        return "kept"
    await client.update_automation(first.id, wanted)
    return "updated"


async def ensure_pool_crash_watch(pool: str, seconds: float) -> str:
    """ensure_crash_watch for the pool named `pool`, on the configured Prefect API."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        work_pool = await client.read_work_pool(pool)
        return await ensure_crash_watch(client, pool, work_pool.id, seconds)


def crash_watch_note(pool: str, seconds: float, done: str) -> str:
    """What `sunbeam pool` and the worker say about it."""
    return (
        f"{done} the crash watch of work pool {pool!r}: a run without heartbeat for "
        f"{seconds:g}s ends Crashed"
    )
