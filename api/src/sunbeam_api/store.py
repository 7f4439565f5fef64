"""Read-only access to pipeline results in MongoDB (`series` and `series_chunks`, see contracts).

Every filter is built here from validated strings, so caller input is only ever compared for
equality and never becomes a query operator.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from pymongo.asynchronous.database import AsyncDatabase

from sunbeam_api.downsample import bucket_mean

SERIES = "series"
CHUNKS = "series_chunks"
KEYS = ("ref", "event", "stage", "name")
ResultKey = Literal["ref", "event", "stage", "name"]


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
        db[SERIES].find(filters, {"_id": 0}).sort([(k, 1) for k in KEYS]).skip(offset).limit(limit)
    )
    items = [_info(doc) async for doc in cursor]
    total = await db[SERIES].count_documents(filters)
    return SeriesPage(items=items, total=total, limit=limit, offset=offset)


async def distinct_values(db: AsyncDatabase, key: ResultKey, filters: dict[str, str]) -> list[str]:
    values = await db[SERIES].distinct(key, filters)
    return sorted(v for v in values if isinstance(v, str))


def as_utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _clean(v: object) -> float | None:
    if v is None:
        return None
    f = float(v)  # type: ignore[arg-type]
    return None if math.isnan(f) or math.isinf(f) else f


async def read_series(
    db: AsyncDatabase,
    key: dict[str, str],
    *,
    start: datetime | None,
    end: datetime | None,
    max_points: int | None,
) -> SeriesData | None:
    doc = await db[SERIES].find_one(key, {"_id": 0})
    if doc is None:
        return None
    info = _info(doc)
    start, end = (as_utc(start) if start else None), (as_utc(end) if end else None)
    times: list[datetime] = []
    values: list[float | None] = []
    chunks = db[CHUNKS].find(key, {"_id": 0, "t": 1, "v": 1, "chunk": 1}).sort("chunk", 1)
    async for chunk in chunks:
        if info.n_chunks is not None and chunk.get("chunk", 0) >= info.n_chunks:
            break  # a stale tail from an interrupted re-run; the series document is authoritative
        for t, v in zip(chunk.get("t") or [], chunk.get("v") or [], strict=False):
            t = as_utc(t)
            if (start is None or t >= start) and (end is None or t <= end):
                times.append(t)
                values.append(_clean(v))
    in_window = len(times)
    downsampling = None
    if max_points is not None and in_window > max_points:
        times, values = bucket_mean(times, values, max_points)
        downsampling = f"bucket-mean:{in_window}->{len(times)}"
    return SeriesData(
        **info.model_dump(),
        window_start=start,
        window_end=end,
        points_in_window=in_window,
        downsampling=downsampling,
        t=times,
        v=values,
    )


async def purge_ref(db: AsyncDatabase, ref: str) -> dict[str, int]:
    series = await db[SERIES].delete_many({"ref": ref})
    chunks = await db[CHUNKS].delete_many({"ref": ref})
    return {"series": series.deleted_count, "chunks": chunks.deleted_count}
