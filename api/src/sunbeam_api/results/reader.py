"""Reading one series' window from MongoDB, fast at a season's scale (docs/contracts.md).

Schema version 2: only the chunks whose time bounds (kept in the series document, so finding them
costs no query) meet the window are fetched, decoded with numpy from their int64/float64 bytes,
and a `max_points` view is answered from the coarsest pre-aggregated level that still has at least `max_points` buckets in the window, so a wide view
never touches raw points. Schema version 1 (lists of datetimes and floats) is still read, whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from bson.codec_options import CodecOptions
from pymongo.asynchronous.database import AsyncDatabase

from sunbeam_api.results.downsampling import (
    downsample_levels,
    downsample_points,
    level_fields,
)
from sunbeam_api.results.points import Points, Window, to_ms
from sunbeam_api.results.store import CHUNKS, LEVELS, SERIES

Method = Literal["minmax-lttb", "bucket-mean"]
RAW = "raw"


@dataclass(frozen=True)
class View:
    header: dict[str, Any]
    points_in_window: int
    method: str | None
    level: str
    points: Points

    @property
    def downsampling(self) -> str | None:
        if self.method is None:
            return None
        return f"{self.method}:{self.points_in_window}->{len(self.points)}"


def _i64(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<i8")


def _f64(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f8")


def _cat(parts: list[np.ndarray], dtype: str) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


@dataclass(frozen=True)
class Chunks:
    """The raw chunks that meet a window: their numbers, time spans (ms) and point counts."""

    chunk: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    n: np.ndarray

    def within(self, window: Window) -> np.ndarray:
        """Which of them lie wholly inside the window."""
        return window.mask(self.t0) & window.mask(self.t1)


async def read_view(
    db: AsyncDatabase,
    key: dict[str, str],
    *,
    window: Window,
    max_points: int | None,
    method: Method = "minmax-lttb",
) -> View | None:
    header = await db[SERIES].find_one(key, {"_id": 0})
    if header is None:
        return None
    if header.get("schema_version", 1) < 2:
        points = await _read_v1(db, key, header, window)
        return _finish(header, points, max_points, method)
    chunks = _chunks_from_header(header, window) or await _chunks_from_db(db, key, header, window)
    # The window holds at most its chunks' points: when not even that many would fill a level,
    # the raw read is the answer (and its length the exact count), with no counting read first.
    level = None if max_points is None else _pick_level(header, int(chunks.n.sum()), max_points)
    if level is not None and max_points is not None:
        in_window = await _count_in_window(db, key, chunks, window)
        level = _pick_level(header, in_window, max_points)
    if level is None or max_points is None:
        points = await _read_raw(db, key, chunks.chunk.tolist(), window)
        return _finish(header, points, max_points, method)
    used, points = await _read_level(db, key, level, window, max_points, method)
    return View(header, in_window, used, f"L{level['level']}:{level['points_per_bucket']}", points)


async def _read_level(
    db: AsyncDatabase,
    key: dict[str, str],
    level: dict[str, Any],
    window: Window,
    max_points: int,
    method: Method,
) -> tuple[str, Points]:
    query = {**key, "level": level["level"], "chunk": {"$lt": level["n_chunks"]}}
    fields = dict.fromkeys(level_fields(max_points, method), 1)
    docs = db[LEVELS].find({**query, **window.time_filter()}, {"_id": 0, **fields})
    buckets = [d async for d in docs.sort("chunk", 1)]
    return downsample_levels(buckets, window, max_points, method)


def _finish(header: dict[str, Any], points: Points, max_points: int | None, method: Method) -> View:
    n = len(points)
    if max_points is None or n <= max_points:
        return View(header, n, None, RAW, points)
    used, out = downsample_points(points, max_points, method)
    return View(header, n, used, RAW, out)


def _pick_level(header: dict[str, Any], in_window: int, max_points: int) -> dict[str, Any] | None:
    """The coarsest level with at least max_points buckets in the window (estimated by count)."""
    levels = sorted(header.get("levels") or [], key=lambda lv: -lv["points_per_bucket"])
    for level in levels:
        if in_window // level["points_per_bucket"] >= max_points:
            return level
    return None


def _chunks_from_header(header: dict[str, Any], window: Window) -> Chunks | None:
    """The chunk index the writer keeps in the series document (None if it has none)."""
    n_chunks = header.get("n_chunks") or 0
    found = [header.get(f) for f in ("chunk_t0", "chunk_t1", "chunk_n")]
    fields = [f for f in found if f is not None and len(f) == 8 * n_chunks]
    if len(fields) != len(found):
        return None
    t0, t1, n = (_i64(f) for f in fields)
    meets = np.ones(n_chunks, dtype=bool)
    if window.start_ms is not None:
        meets &= t1 >= window.start_ms
    if window.end_ms is not None:
        meets &= t0 <= window.end_ms
    return Chunks(np.flatnonzero(meets), t0[meets], t1[meets], n[meets])


async def _chunks_from_db(
    db: AsyncDatabase, key: dict[str, str], header: dict[str, Any], window: Window
) -> Chunks:
    query = {**key, "chunk": {"$lt": header.get("n_chunks") or 0}, **window.time_filter()}
    cursor = db[CHUNKS].find(query, {"_id": 0, "chunk": 1, "n": 1, "t0": 1, "t1": 1})
    docs = sorted([d async for d in cursor], key=lambda d: d["chunk"])

    def column(f: str) -> np.ndarray:
        return np.array([to_ms(d[f]) if f in ("t0", "t1") else d[f] for d in docs], dtype=np.int64)

    return Chunks(column("chunk"), column("t0"), column("t1"), column("n"))


async def _count_in_window(
    db: AsyncDatabase, key: dict[str, str], chunks: Chunks, window: Window
) -> int:
    """Points in the window: whole chunks by their count, the (at most two) edge chunks exactly."""
    inside = chunks.within(window)
    total = int(chunks.n[inside].sum())
    edges = chunks.chunk[~inside].tolist()
    if edges:
        cursor = db[CHUNKS].find({**key, "chunk": {"$in": edges}}, {"_id": 0, "tb": 1})
        total += sum([int(window.mask(_i64(d["tb"])).sum()) async for d in cursor])
    return total


async def _read_raw(
    db: AsyncDatabase, key: dict[str, str], chunks: list[int], window: Window
) -> Points:
    if not chunks:
        return Points.empty()
    cursor = db[CHUNKS].find(
        {**key, "chunk": {"$in": chunks}}, {"_id": 0, "chunk": 1, "tb": 1, "vb": 1}
    )
    docs = sorted([d async for d in cursor], key=lambda d: d["chunk"])
    t = _cat([_i64(d["tb"]) for d in docs], "<i8")
    v = _cat([_f64(d["vb"]) for d in docs], "<f8")
    return window.cut(Points(t, v))


async def _read_v1(
    db: AsyncDatabase, key: dict[str, str], header: dict[str, Any], window: Window
) -> Points:
    # Naive datetimes (BSON's UTC) convert to datetime64 in C; aware ones would not.
    naive: AsyncDatabase[dict[str, Any]] = db.with_options(
        codec_options=CodecOptions(tz_aware=False)
    )
    n_chunks = header.get("n_chunks")
    query: dict[str, Any] = dict(key)
    if n_chunks is not None:
        query["chunk"] = {"$lt": n_chunks}  # a stale tail from an interrupted re-run
    cursor = naive[CHUNKS].find(query, {"_id": 0, "chunk": 1, "t": 1, "v": 1})
    docs = sorted([d async for d in cursor], key=lambda d: d.get("chunk", 0))
    t = _cat([np.array(d.get("t") or [], dtype="datetime64[ms]") for d in docs], "datetime64[ms]")
    v = _cat([np.array(d.get("v") or [], dtype=np.float64) for d in docs], "<f8")
    t = t.astype(np.int64)
    n = min(t.shape[0], v.shape[0])
    t, v = t[:n], v[:n]
    keep = window.mask(t)
    return Points(t[keep], v[keep])
