"""Prefect's "busy" answers retried at once where the API makes several writes in one request.

Prefect's server on SQLite answers 503 ("database is locked") when another write commits while a
write request runs: common under load, e.g. while agents poll and heartbeat every second and a
run just created is being picked up. The lock is free again within milliseconds, but Prefect's
client waits 2, 4, 8, 16 s (jittered) before its retries, so a handful of 503s across the push
webhook's per-host run creations outlasts GitHub's 10 s delivery timeout, or a 30 s one.

Every API Prefect client has the response hook `raise_when_busy`; inside `retried_when_busy` it
raises a busy answer at once (before the client's own back-off), and the call is made again on
the schedule every Sunbeam caller uses (`sunbeam_contracts.prefect_api`), until a deadline.
Outside it the client keeps Prefect's retries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TypeVar

import httpx

from sunbeam_contracts.prefect_api import BUSY_STATUSES, busy_pause

T = TypeVar("T")


_fail_fast: ContextVar[bool] = ContextVar("sunbeam_prefect_fail_fast", default=False)


class PrefectBusy(httpx.HTTPStatusError):
    """A busy answer from Prefect (the API answers it with 503, as any Prefect 503)."""


async def raise_when_busy(response: httpx.Response) -> None:
    """httpx response hook: inside `retried_when_busy`, a busy answer raises PrefectBusy."""
    if _fail_fast.get() and response.status_code in BUSY_STATUSES:
        await response.aread()
        raise PrefectBusy(
            f"Prefect answered {response.status_code}",
            request=response.request,
            response=response,
        )


EVENT_HOOKS = {"response": [raise_when_busy]}


async def retried_when_busy(call: Callable[[], Awaitable[T]], deadline: float) -> T:
    """`call()`, made again after a short pause while Prefect answers busy and before
    `deadline` (time.monotonic()); then the last PrefectBusy is raised."""
    attempt = 0
    while True:
        attempt += 1
        token = _fail_fast.set(True)
        try:
            return await call()
        except PrefectBusy as exc:
            error = exc
        finally:
            _fail_fast.reset(token)
        pause = busy_pause(attempt)
        if time.monotonic() + pause >= deadline:
            raise error
        await asyncio.sleep(pause)
