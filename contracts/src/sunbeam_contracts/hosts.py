"""Hosts: one per cache folder. Each has its own work queue, and its workers' names carry its id.

The push webhook prewarms every host: it reads the pool's live workers, takes the host id out of
each worker's name and creates one sync-only run on each host's queue.
"""

from __future__ import annotations

import re

SHARED_QUEUE = "default"  # Prefect's own queue of every pool; deployments without one use it
HOST_QUEUE_PREFIX = "host-"
WORKER_HOST_SEPARATOR = "@"  # worker name: <instance>@<host id>
MAX_HOST_ID_LENGTH = 63
_HOST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def host_id_problem(host_id: str) -> str | None:
    """Why `host_id` cannot name a host (and its queue), or None."""
    if not host_id:
        return "it is empty"
    if len(host_id) > MAX_HOST_ID_LENGTH:
        return f"it is {len(host_id)} characters long; at most {MAX_HOST_ID_LENGTH} allowed"
    if not _HOST_ID.match(host_id):
        return "use letters, digits, '.', '_' and '-', starting with a letter or digit"
    return None


def host_queue(host_id: str) -> str:
    """The work queue only that host's agents poll."""
    return f"{HOST_QUEUE_PREFIX}{host_id}"


def worker_name(instance: str, host_id: str) -> str:
    return f"{instance}{WORKER_HOST_SEPARATOR}{host_id}"


def worker_host(name: str) -> str | None:
    """The host id a worker's name carries, or None for a worker not named by this rule."""
    _, separator, host_id = name.rpartition(WORKER_HOST_SEPARATOR)
    if not separator or host_id_problem(host_id):
        return None
    return host_id
