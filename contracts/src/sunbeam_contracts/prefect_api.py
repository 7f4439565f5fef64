"""How every Sunbeam caller treats a busy Prefect server: which answers mean busy, when to ask again.

Prefect's server answers 503 while its database is locked (SQLite's write lock, held for
milliseconds; PostgreSQL under a burst), 429 when rate-limited, and 408/502 through proxies. Its own
client waits 2, 4, 8, 16 s before retrying those: too long for a launcher that starts a flow run, or
a webhook that must answer GitHub within 10 s. Every Sunbeam caller (the launcher's stdlib client,
the API's Prefect client, the stack) asks again on this one schedule instead: a short first pause,
doubling to a cap, jittered so that callers that met on the same lock do not meet again, until a
budget is spent.
"""

from __future__ import annotations

import random

BUSY_STATUSES = frozenset({408, 429, 502, 503})
FIRST_PAUSE_S = 0.05
MAX_PAUSE_S = 1.0
# Long enough for a burst (three agents starting nine runs at once on SQLite outlasted 3 s).
BUSY_BUDGET_S = 15.0


def busy_pause(attempt: int, first: float = FIRST_PAUSE_S) -> float:
    """Seconds to wait after the `attempt`-th busy answer (1, 2, ...) before asking again."""
    pause: float = min(first * 2.0 ** (attempt - 1), MAX_PAUSE_S)
    return pause * random.uniform(0.75, 1.25)
