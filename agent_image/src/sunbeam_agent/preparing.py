"""Bridge the sync core's blocking `prepare()` context into the worker's event loop.

`sunbeam_sync.prepare()` is synchronous and holds a shared lease on the environment until its
`with` block exits. The lease must outlive the flow run, which the worker awaits asynchronously,
so the whole `with` block lives in one worker thread: it enters, hands the result back, and
waits to be released. Entering and leaving in the same thread keeps any thread-bound lock sane.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import anyio
from prefect.client.orchestration import PrefectClient

from sunbeam_sync import PrepareRequest, PrepareResult, SyncSettings, prepare


@dataclass(frozen=True)
class Prepared:
    result: PrepareResult
    seconds: float  # wall time of the whole prepare step, as the run saw it


def _settle(future: asyncio.Future[Any], value: Any = None, error: BaseException | None = None):
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


@asynccontextmanager
async def prepared_environment(
    request: PrepareRequest,
    settings: SyncSettings,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    cancel: threading.Event,
) -> AsyncIterator[Prepared]:
    """Prepare the env in a thread and keep its lease until this context exits.

    Raises whatever `prepare()` raises (`SunbeamSyncError` subclasses, `Cancelled`).
    A plain thread and futures rather than a task group, so that errors reach the caller
    as themselves and not wrapped in exception groups.
    """
    loop = asyncio.get_running_loop()
    entered: asyncio.Future[Prepared] = loop.create_future()
    exited: asyncio.Future[None] = loop.create_future()
    release = threading.Event()

    def hold() -> None:
        started = time.monotonic()
        try:
            with prepare(request, settings=settings, logger=logger, cancel=cancel) as prepared:
                done = Prepared(prepared.result, time.monotonic() - started)
                loop.call_soon_threadsafe(_settle, entered, done)
                release.wait()
        except BaseException as exc:
            loop.call_soon_threadsafe(_settle, entered, None, exc)
        finally:
            loop.call_soon_threadsafe(_settle, exited)

    threading.Thread(target=hold, name="sunbeam-lease", daemon=True).start()
    try:
        prepared = await entered
    except asyncio.CancelledError:
        # The worker is shutting down mid-sync: stop the sync; the thread cleans up itself.
        cancel.set()
        release.set()
        raise
    try:
        yield prepared
    finally:
        release.set()
        if not exited.done():
            # Give the lease back before the run is reported done.
            await asyncio.shield(exited)


async def watch_for_cancellation(
    client: PrefectClient,
    flow_run_id: UUID,
    cancel: threading.Event,
    interval: float,
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    """Set `cancel` as soon as the run is asked to cancel (polls the API every `interval`)."""
    while not cancel.is_set():
        await anyio.sleep(interval)
        try:
            flow_run = await client.read_flow_run(flow_run_id)
        except Exception as exc:  # a blip in the API must not kill the sync
            logger.debug("Could not read flow run state while syncing: %s", exc)
            continue
        state = flow_run.state
        if state is not None and (state.is_cancelling() or state.is_cancelled()):
            logger.info("Cancellation requested: stopping the sync")
            cancel.set()
