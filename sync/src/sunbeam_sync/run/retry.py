"""One cancel-aware retry with backoff, and the one list of failures worth retrying."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sunbeam_sync.errors import Cancelled

T = TypeVar("T")

# Output of git or uv that means "the remote could not be reached (this time)", lower case.
TRANSIENT = (
    "could not resolve host",
    "dns error",
    "connection refused",
    "connection reset",
    "connection timed out",
    "operation timed out",
    "timed out",
    "tcp connect error",
    "error sending request",
    "failed to fetch",
    "could not connect",
    "couldn't connect",
    "failed to connect",
    "network connectivity is disabled",
    "early eof",
    "the remote end hung up",
    "temporary failure",
    "http 5",
    "error: 5",
    "502",
    "503",
    "504",
    "rpc failed",
)


def is_transient(output: str) -> bool:
    out = output.lower()
    return any(s in out for s in TRANSIENT)


def retry(
    action: Callable[[], T],
    *,
    again: Callable[[T], bool],
    attempts: int,
    backoff: float,
    cancel: threading.Event | None,
    on_retry: Callable[[T, int, float], None],
) -> T:
    """Call `action` until `again(result)` is false or `attempts` are used; return the last result.

    Waits `backoff * 2**(n-1)` seconds after the n-th attempt; a cancel ends the wait at once.
    """
    attempts = max(1, attempts)
    for attempt in range(1, attempts + 1):
        result = action()
        if attempt == attempts or not again(result):
            return result
        delay = backoff * 2 ** (attempt - 1)
        on_retry(result, attempt, delay)
        if cancel is None:
            time.sleep(delay)
        elif cancel.wait(delay):
            raise Cancelled("cancelled while waiting to retry")
    raise AssertionError("unreachable")
