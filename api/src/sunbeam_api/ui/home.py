"""The home page's data: every ref and event with results, and the latest run of each ref.

Results come from MongoDB (their provenance names the flow run that wrote them); runs come from
Prefect, the source of truth for runs. When Prefect does not answer the page still lists the
results and says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from pymongo.asynchronous.database import AsyncDatabase

from sunbeam_api.dependencies import prefect_client
from sunbeam_api.orchestration import runs as prefect_runs
from sunbeam_api.results import store
from sunbeam_api.settings import Settings

log = logging.getLogger("sunbeam_api")
RECENT_RUNS = 200


@dataclass
class EventRow:
    event: str
    n_series: int = 0
    commit: str | None = None
    env_key: str | None = None
    flow_run_id: str | None = None
    written_at: datetime | None = None


@dataclass
class RefRow:
    ref: str
    events: list[EventRow] = field(default_factory=list)
    run: prefect_runs.RunSummary | None = None


# Prefect 3.8+ serves its new UI under /v2 and makes it the default: its root redirects a browser
# there, while a deep link without /v2 (/runs/flow-run/ID) opens the old UI.
DASHBOARD_UI = "/v2"


def dashboard_url(settings: Settings, run_id: UUID | str) -> str:
    """The Prefect dashboard's page of a run, in the UI its root opens (served next to its API)."""
    base = settings.prefect_api_url.rstrip("/").removesuffix("/api")
    return f"{base}{DASHBOARD_UI}/runs/flow-run/{run_id}"


def ago(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - when).total_seconds())
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''} ago"
    return f"{max(seconds, 0)} s ago"


async def ref_rows(db: AsyncDatabase) -> list[RefRow]:
    rows: dict[str, dict[str, EventRow]] = {}
    async for doc in store.provenance_rows(db):
        event = rows.setdefault(doc["ref"], {}).setdefault(doc["event"], EventRow(doc["event"]))
        event.n_series += 1
        p: dict[str, Any] = doc.get("provenance") or {}
        written = p.get("written_at")
        if written is not None and (event.written_at is None or written > event.written_at):
            event.commit, event.env_key = p.get("commit"), p.get("env_key")
            event.flow_run_id, event.written_at = p.get("flow_run_id"), written
    return [
        RefRow(ref, [events[e] for e in sorted(events)]) for ref, events in sorted(rows.items())
    ]


async def attach_runs(settings: Settings, rows: list[RefRow]) -> str | None:
    """Set each ref's latest run; returns why runs are missing, if Prefect did not answer."""
    ids = {UUID(e.flow_run_id) for r in rows for e in r.events if _is_uuid(e.flow_run_id)}
    try:
        async with prefect_client(settings) as client:
            recent = await prefect_runs.list_runs(
                client, ref=None, state=None, limit=RECENT_RUNS, offset=0
            )
            written = (
                await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(ids)))
                )
                if ids
                else []
            )
    except (httpx.HTTPError, OSError, RuntimeError) as exc:
        log.warning("home page: Prefect did not answer: %s", type(exc).__name__)
        return "Prefect is unavailable: the latest runs are not shown"
    by_id = {str(s.id): s for s in [*recent, *map(prefect_runs.summarize, written)]}
    for row in rows:
        candidates = [s for s in by_id.values() if s.ref == row.ref]
        candidates += [by_id[e.flow_run_id] for e in row.events if e.flow_run_id in by_id]
        if candidates:
            row.run = _named_by_results(max(candidates, key=_started), row.events)
    return None


def _named_by_results(
    run: prefect_runs.RunSummary, events: list[EventRow]
) -> prefect_runs.RunSummary:
    """The run, its missing commit and env key taken from the provenance of the results it wrote.

    Only our agent labels a run with them; a run started another way (a stock worker, a flow
    called in-process) still wrote both into its results, and the run column should say what ran.
    """
    wrote = [e for e in events if e.flow_run_id == str(run.id)]
    if (run.commit and run.env_key) or not wrote:
        return run
    latest = max(wrote, key=lambda e: e.written_at or datetime.min.replace(tzinfo=UTC))
    commit, env_key = run.commit or latest.commit, run.env_key or latest.env_key
    return run.model_copy(update={"commit": commit, "env_key": env_key})


def _started(run: prefect_runs.RunSummary) -> datetime:
    return run.start_time or run.created or datetime.min.replace(tzinfo=UTC)


def _is_uuid(value: str | None) -> bool:
    try:
        UUID(str(value))
    except ValueError:
        return False
    return True
