"""The agent's host id: one per cache folder, recorded in it.

A host, for prewarming, is a cache: agents that share a cache folder (Compose replicas on one
volume, several workers on one machine) must share a prewarm, and agents with caches of their own
each need one. So the default id is made once per cache folder (`<hostname>-<6 hex>`) and kept in
`<cache>/host-id`; every agent on that cache reads the same id. SUNBEAM_HOST_ID overrides it.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from pathlib import Path

from sunbeam_agent.errors import AgentError
from sunbeam_contracts.hosts import host_id_problem

HOST_ID_FILE = "host-id"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class HostIdError(AgentError):
    """The host id cannot be read or recorded; the message says why and what to do."""


def cache_host_id(cache_dir: Path) -> str:
    """The id recorded in `cache_dir`, made on first use (the first agent to record it wins)."""
    path = cache_dir / HOST_ID_FILE
    try:
        if not path.exists():
            _record(path, f"{_hostname_slug()}-{secrets.token_hex(3)}")
        recorded = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise HostIdError(
            f"cannot record the host id in {path} ({exc.strerror or exc}): make the cache "
            "folder writable (SUNBEAM_CACHE_DIR) or set SUNBEAM_HOST_ID"
        ) from None
    problem = host_id_problem(recorded)
    if problem:
        raise HostIdError(
            f"{path} holds an invalid host id ({problem}): delete the file or set SUNBEAM_HOST_ID"
        )
    return recorded


def _record(path: Path, host_id: str) -> None:
    # Written aside, then linked into place: link() fails if another agent on this cache got
    # there first, and a reader never sees a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{HOST_ID_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    aside.write_text(host_id + "\n", encoding="utf-8")
    try:
        os.link(aside, path)
    except FileExistsError:
        pass
    finally:
        aside.unlink(missing_ok=True)


def _hostname_slug() -> str:
    slug = _UNSAFE.sub("-", socket.gethostname()).lstrip("-._")[:40].rstrip("-._")
    return slug or "host"
