"""Prefect's "busy" answers retried at once where the API makes several writes in one request.

Prefect's server on SQLite answers 503 ("database is locked") when another write commits while a
write request runs: common under load, e.g. while agents poll and heartbeat every second and a
run just created is being picked up. The lock is free again within milliseconds, but Prefect's
client waits 2, 4, 8, 16 s (jittered) before its retries, so a handful of 503s across the push
webhook's per-host run creations outlasts GitHub's 10 s delivery timeout, or a 30 s one.

Every API Prefect client has the response hook `raise_when_busy`; inside `retried_when_busy` it
raises a busy answer at once (before the client's own back-off), and the call is made again
after a short pause, until a deadline. Outside it the client keeps Prefect's retries.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TypeVar

import httpx

T = TypeVar("T")

BUSY_STATUSES = frozenset({408, 429, 502, 503})  # the answers Prefect's client retries
PAUSE_S = 0.1  # times the attempt's number, at most MAX_PAUSE_S, jittered
MAX_PAUSE_S = 1.0

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
        pause = min(PAUSE_S * attempt, MAX_PAUSE_S) * random.uniform(0.5, 1.5)
        if time.monotonic() + pause >= deadline:
            raise error
        await asyncio.sleep(pause)
