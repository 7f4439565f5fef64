"""One cancel-aware retry with backoff, and the one list of failures worth retrying.

Next to it, the causes never worth a retry (a corrupt repository, a missing commit), which win
over a transient-looking line in the same output.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sunbeam_sync.errors import Cancelled

T = TypeVar("T")

# Output of git or uv that means "the remote could not be reached (this time)", lower case:
# names resolution, connections refused, reset, dropped or timed out, and server errors (5xx,
# `SERVER_ERROR`). Not "failed to fetch" alone: uv says it for a commit a repository lacks too.
TRANSIENT = (
    "could not resolve host",
    "dns error",
    "temporary failure in name resolution",
    "connection refused",
    "connection reset",
    "timed out",
    "tcp connect error",
    "could not connect",
    "couldn't connect",
    "failed to connect",
    "early eof",
    "the remote end hung up",
    "rpc failed",
)
SERVER_ERROR = re.compile(r"(?:returned error: |server error \(|http |status:? )5\d\d\b")

# Output naming a cause no retry changes, though the same output may say a connection dropped
# (a server aborting on a corrupt repository hangs up): these decide, lower case.
CORRUPT = (
    "repository corruption",
    " is corrupt",
    "unable to unpack",
    "did not receive expected object",
)
MISSING_COMMIT = "not our ref"  # git's upload-pack: the repository has no such commit
PERMANENT = (*CORRUPT, MISSING_COMMIT)

# git asked for credentials it was not given, or the server refused the ones it got. 403 only as
# a status on its own: an object id in git's output ("…a403b…") is no refusal.
_REFUSED = re.compile(r"authentication failed|could not read (?:username|password)|\b403\b")


def refused_credentials(output: str) -> bool:
    return _REFUSED.search(output.lower()) is not None


def is_transient(output: str) -> bool:
    out = output.lower()
    if any(s in out for s in PERMANENT):
        return False
    return any(s in out for s in TRANSIENT) or SERVER_ERROR.search(out) is not None


def corruption(lines: list[str]) -> str | None:
    """git's line saying the remote repository is corrupt, if one does."""
    said = [ln.strip() for ln in lines if any(s in ln.lower() for s in CORRUPT)]
    telling = [ln for ln in said if "is corrupt" in ln.lower()] or said
    return telling[0].removeprefix("remote: ").strip()[:300] if telling else None


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
