"""The one door to pipeline results in MongoDB: the collection names, listings, lookups, purges.

The collections (`series`, `series_chunks`, `series_levels`; docs/contracts.md) are named here
only; the series reader and compare use these names, and the pages ask these functions. Every
filter is built from validated strings, so caller input is only ever compared for equality and
never becomes a query operator.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from pymongo.asynchronous.database import AsyncDatabase

SERIES = "series"
CHUNKS = "series_chunks"
LEVELS = "series_levels"
KEYS = ("ref", "event", "stage", "name")
ResultKey = Literal["ref", "event", "stage", "name"]
# A listing needs no level table or chunk index (kilobytes per series at a season's scale).
LISTING = {"_id": 0, "levels": 0, "chunk_t0": 0, "chunk_t1": 0, "chunk_n": 0}


class Provenance(BaseModel):
    ref: str | None = None
    commit: str | None = None
    env_key: str | None = None
    flow_run_id: str | None = None
    written_at: datetime | None = None


class SeriesInfo(BaseModel):
    ref: str
    event: str
    stage: str
    name: str
    units: str | None = None
    description: str | None = None
    dtype: str | None = None
    n_points: int | None = None
    n_chunks: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    schema_version: int = 1
    stats: dict[str, Any] | None = None
    provenance: Provenance | None = None


class SeriesPage(BaseModel):
    items: list[SeriesInfo]
    total: int
    limit: int
    offset: int


class SeriesData(SeriesInfo):
    window_start: datetime | None
    window_end: datetime | None
    points_in_window: int
    downsampling: str | None
    method: str | None = None
    level: str | None = None
    t: list[datetime]
    v: list[float | None]


def safe_filename(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", value)


def key_filter(**values: str | None) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


def _info(doc: dict[str, Any]) -> SeriesInfo:
    doc = {k: v for k, v in doc.items() if k != "_id"}
    return SeriesInfo.model_validate(doc)


async def list_series(
    db: AsyncDatabase, *, filters: dict[str, str], limit: int, offset: int
) -> SeriesPage:
    cursor = (
        db[SERIES].find(filters, LISTING).sort([(k, 1) for k in KEYS]).skip(offset).limit(limit)
    )
    items = [_info(doc) async for doc in cursor]
    total = await db[SERIES].count_documents(filters)
    return SeriesPage(items=items, total=total, limit=limit, offset=offset)


async def distinct_values(db: AsyncDatabase, key: ResultKey, filters: dict[str, str]) -> list[str]:
    values = await db[SERIES].distinct(key, filters)
    return sorted(v for v in values if isinstance(v, str))


def as_utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


async def purge_ref(db: AsyncDatabase, ref: str) -> dict[str, int]:
    series = await db[SERIES].delete_many({"ref": ref})
    chunks = await db[CHUNKS].delete_many({"ref": ref})
    await db[LEVELS].delete_many({"ref": ref})
    return {"series": series.deleted_count, "chunks": chunks.deleted_count}


async def has_series(db: AsyncDatabase, **key: str | None) -> bool:
    """Is at least one series stored under this (ref, event, stage, name) prefix?"""
    return await db[SERIES].find_one(key_filter(**key), {"_id": 1}) is not None


async def event_series(db: AsyncDatabase, ref: str, event: str) -> list[dict[str, Any]]:
    """The listing of every series of one ref and event, by stage and name."""
    cursor = db[SERIES].find({"ref": ref, "event": event}, LISTING)
    return sorted([d async for d in cursor], key=lambda d: (d["stage"], d["name"]))


async def refs_with_event(db: AsyncDatabase, event: str) -> list[str]:
    return sorted(
        r for r in await db[SERIES].distinct("ref", {"event": event}) if isinstance(r, str)
    )


async def provenance_rows(db: AsyncDatabase) -> AsyncIterator[dict[str, Any]]:
    """(ref, event, provenance) of every series: what the home page summarises."""
    cursor = db[SERIES].find({}, {"_id": 0, "ref": 1, "event": 1, "provenance": 1})
    async for doc in cursor:
        yield doc
