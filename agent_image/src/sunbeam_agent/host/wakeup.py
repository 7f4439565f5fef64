"""Runs start when they are asked for: the worker hears of a new run in its pool at once.

Prefect's workers find runs by polling their pool every PREFECT_WORKER_QUERY_SECONDS (10 s by
default), so a new run waits for the next poll. The server also publishes every flow-run state
change on its events stream (`/api/events/out`, read with Prefect's public
`get_events_subscriber`), naming the run's work pool and queue among the related resources.
`RunWakeup` listens for runs entering a Scheduled-type state in the worker's pool and on one of
its queues, and has the worker poll at once: the poll itself (Prefect's own code, with its
queues, limit and prefetch) decides what the worker takes.

Polling stays as it is, the fallback: without the stream (a proxy that refuses websockets, a
server with PREFECT_SERVER_EVENTS_STREAM_OUT_ENABLED=false) runs start at the next poll, as with
Prefect's stock workers, and the worker says so once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING
from uuid import UUID

import anyio
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import (
    EventAnyResourceFilter,
    EventFilter,
    EventNameFilter,
    EventResourceFilter,
)
from prefect.events.schemas.events import Event, ResourceSpecification

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

Poll = Callable[[], Awaitable[Sequence["FlowRun"]]]

# The event can reach the worker before the server's transaction that made the run is visible
# to a poll, so a run the poll did not return is looked for again after these pauses. A run that
# another worker took, or one scheduled for later, costs these few polls and no more.
RETRY_PAUSES = (0.3, 1.0, 3.0)
# After the stream failed for good (the subscriber's own reconnects are spent), try again after
# this; polling carries on meanwhile.
RECONNECT_SECONDS = 30.0
_RUN_PREFIX = "prefect.flow-run."


def scheduled_runs_filter(pool_id: UUID) -> EventFilter:
    """Flow runs entering a Scheduled-type state (Scheduled, AwaitingRetry, Late...) in the pool."""
    return EventFilter(
        event=EventNameFilter(prefix=[_RUN_PREFIX]),
        resource=EventResourceFilter(
            labels=ResourceSpecification({"prefect.state-type": "SCHEDULED"})
        ),
        any_resource=EventAnyResourceFilter(id=[f"prefect.work-pool.{pool_id}"]),
    )


def run_for_queues(event: Event, queues: frozenset[str]) -> UUID | None:
    """The run the event announces, if it is on one of `queues` (empty: any queue)."""
    resource_id = event.resource.id
    if not resource_id.startswith(_RUN_PREFIX):
        return None
    if queues:
        named = {r.name for r in event.related if r.role == "work-queue"}
        if not named & queues:
            return None
    try:
        return UUID(resource_id.removeprefix(_RUN_PREFIX))
    except ValueError:
        return None


class RunWakeup:
    """Polls the worker's pool as soon as the events stream announces a run for it."""

    def __init__(
        self,
        poll: Poll,
        pool_id: Callable[[], UUID | None],
        queues: Iterable[str],
        logger: logging.Logger,
    ) -> None:
        self._poll = poll
        self._pool_id = pool_id
        self._queues = frozenset(queues)
        self._logger = logger
        self._woken = anyio.Event()
        self._polls_since_event: dict[UUID, int] = {}  # runs announced, not yet seen claimed
        self.listening = False

    def wake(self, run_id: UUID | None = None) -> None:
        """Poll now; with a run, keep looking for it for a few more polls (RETRY_PAUSES)."""
        if run_id is not None:
            self._polls_since_event[run_id] = 0
        self._woken.set()

    async def serve(self) -> None:
        """Listen and poll until cancelled. Never raises: it runs in the worker's own task, and
        an error here must not stop the worker's polling."""
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._listen_forever)
                await self._poll_when_woken()
        except Exception as exc:
            self._logger.error(
                "Stopped following new flow runs (%s: %s); they start at the next poll",
                type(exc).__name__,
                exc,
            )

    async def _listen_forever(self) -> None:
        warned = False
        while True:
            pool_id = self._pool_id()
            if pool_id is None:  # the worker has not synced with its pool yet
                await anyio.sleep(1.0)
                continue
            try:
                await self._listen(pool_id)
            except Exception as exc:  # the stream is a speed-up: never the worker's failure
                self.listening = False
                log = self._logger.debug if warned else self._logger.warning
                log(
                    "Cannot follow the Prefect events stream (%s: %s); new flow runs start at "
                    "the next poll (PREFECT_WORKER_QUERY_SECONDS); trying again in %.0fs",
                    type(exc).__name__,
                    exc,
                    RECONNECT_SECONDS,
                )
                warned = True
            await anyio.sleep(RECONNECT_SECONDS)

    async def _listen(self, pool_id: UUID) -> None:
        subscriber = get_events_subscriber(
            filter=scheduled_runs_filter(pool_id), reconnect_on_clean_close=True
        )
        async with subscriber as events:
            self.listening = True
            self._logger.info("Following new flow runs on the events stream: they start at once")
            self.wake()  # runs created while the worker was not listening
            async for event in events:
                run_id = run_for_queues(event, self._queues)
                if run_id is not None:
                    self._logger.debug("Flow run %s scheduled: polling now", run_id)
                    self.wake(run_id)
        self.listening = False

    async def _poll_when_woken(self) -> None:
        while True:
            if self._polls_since_event:
                polls = min(self._polls_since_event.values())
                with anyio.move_on_after(RETRY_PAUSES[polls - 1] if polls else 0.0):
                    await self._woken.wait()
            else:
                await self._woken.wait()
            self._woken = anyio.Event()
            claimed = await self._claimed()
            self._forget(claimed)

    async def _claimed(self) -> set[UUID]:
        try:
            return {run.id for run in await self._poll()}
        except Exception as exc:  # the worker's own poll loop reports API trouble
            self._logger.debug("Poll after a run event failed: %s", exc)
            return set()

    def _forget(self, claimed: set[UUID]) -> None:
        for run_id in list(self._polls_since_event):
            polls = self._polls_since_event[run_id] + 1
            if run_id in claimed or polls > len(RETRY_PAUSES):
                del self._polls_since_event[run_id]
            else:
                self._polls_since_event[run_id] = polls
