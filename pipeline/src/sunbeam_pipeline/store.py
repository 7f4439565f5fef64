"""Results in MongoDB, laid out as docs/contracts.md says.

- `series`: one document per (ref, event, stage, name): units, description, point count, chunk
  count, time span, every chunk's time span and count (so a windowed read needs no chunk query to
  find its chunks) and provenance.
- `series_chunks`: the points, at most CHUNK_POINTS per document, keyed by chunk number, with the
  chunk's first and last time (indexed) so a windowed read touches only the chunks it needs, and the
  times and values as little-endian int64 ms / float64 bytes (schema version 2).
- `series_levels`: pre-aggregated buckets (min/max/sum/count) at coarser resolutions (aggregate.py).
All have unique indexes on their keys and every write is an upsert by key, so a re-run replaces
a series whole instead of duplicating it. Chunks are written before the series document and
stale chunks (past the new chunk count) deleted after it, so a reader that follows `n_chunks`
never sees a half-written series.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pymongo
from bson import Binary
from pymongo import ASCENDING, DeleteMany, ReplaceOne
from pymongo.database import Database
from pymongo.errors import PyMongoError

from sunbeam_pipeline.aggregate import Level, build_levels, stats
from sunbeam_pipeline.config import MongoConfig
from sunbeam_pipeline.errors import StorageError
from sunbeam_pipeline.provenance import Provenance
from sunbeam_pipeline.series import Series

CHUNK_POINTS = 50_000
SERIES = "series"
CHUNKS = "series_chunks"
LEVELS = "series_levels"
SCHEMA_VERSION = 2
ENCODING = "i64ms-f64le"
KEY_FIELDS = ("ref", "event", "stage", "name")


def redact_uri(uri: str) -> str:
    """The URI without credentials, for messages and logs."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparseable MongoDB URI>"
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}"


@dataclass(frozen=True)
class SeriesKey:
    ref: str
    event: str
    stage: str
    name: str

    def filter(self) -> dict[str, str]:
        return {"ref": self.ref, "event": self.event, "stage": self.stage, "name": self.name}


def _bytes(a: np.ndarray, dtype: str) -> Binary:
    return Binary(np.ascontiguousarray(a, dtype=dtype).tobytes())


def _array(b: bytes, dtype: str) -> np.ndarray:
    return np.frombuffer(b, dtype=dtype)


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _chunk_doc(key: SeriesKey, chunk: int, t: np.ndarray, v: np.ndarray) -> dict[str, Any]:
    return {
        **key.filter(),
        "chunk": chunk,
        "n": int(t.shape[0]),
        "t0": _when(int(t[0])),
        "t1": _when(int(t[-1])),
        "tb": _bytes(t, "<i8"),
        "vb": _bytes(v, "<f8"),
    }


def _level_docs(key: SeriesKey, level: Level, size: int) -> list[dict[str, Any]]:
    docs = []
    for chunk, lo in enumerate(range(0, len(level), size)):
        part = slice(lo, lo + size)
        doc: dict[str, Any] = {
            **key.filter(),
            "level": level.level,
            "chunk": chunk,
            "n": len(level.tf[part]),
            "t0": _when(int(level.tf[part][0])),
            "t1": _when(int(level.tl[part][-1])),
        }
        for field in ("tf", "tl", "tmin", "tmax", "cnt"):
            doc[field] = _bytes(getattr(level, field)[part], "<i8")
        for field in ("mn", "mx", "sm"):
            doc[field] = _bytes(getattr(level, field)[part], "<f8")
        docs.append(doc)
    return docs


def _chunk_index(t_ms: np.ndarray, size: int) -> dict[str, Binary]:
    """Every raw chunk's first and last time and point count, for the series document."""
    starts = np.arange(0, t_ms.shape[0], size)
    ends = np.minimum(starts + size, t_ms.shape[0])
    return {
        "chunk_t0": _bytes(t_ms[starts], "<i8"),
        "chunk_t1": _bytes(t_ms[ends - 1], "<i8"),
        "chunk_n": _bytes(ends - starts, "<i8"),
    }


class ResultStore:
    def __init__(self, db: Database, chunk_points: int = CHUNK_POINTS, where: str = "") -> None:
        if not 0 < chunk_points <= CHUNK_POINTS:
            raise ValueError(f"chunk_points must be in 1..{CHUNK_POINTS}")
        self.db = db
        self.chunk_points = chunk_points
        self._where = where or db.name

    @classmethod
    def connect(cls, mongo: MongoConfig) -> ResultStore:
        where = f"{redact_uri(mongo.uri)}/{mongo.database}"
        try:
            client: pymongo.MongoClient = pymongo.MongoClient(
                mongo.uri,
                serverSelectionTimeoutMS=mongo.timeout_ms,
                connectTimeoutMS=mongo.timeout_ms,
                appname="sunbeam-pipeline",
            )
        except (PyMongoError, ValueError) as exc:
            raise StorageError(f"bad MongoDB URI {redact_uri(mongo.uri)}: {exc}") from None
        return cls(client[mongo.database], where=where)

    def close(self) -> None:
        self.db.client.close()

    def _fail(self, doing: str, exc: Exception) -> StorageError:
        reason = f"{type(exc).__name__}: {exc}"
        return StorageError(f"MongoDB at {self._where}: {doing} failed ({reason})")

    def ensure_indexes(self) -> None:
        try:
            self.db[SERIES].create_index(
                [(f, ASCENDING) for f in KEY_FIELDS], unique=True, name="series_key"
            )
            self.db[CHUNKS].create_index(
                [(f, ASCENDING) for f in (*KEY_FIELDS, "chunk")], unique=True, name="chunk_key"
            )
            self.db[CHUNKS].create_index(
                [(f, ASCENDING) for f in (*KEY_FIELDS, "t1")], name="chunk_time"
            )
            self.db[LEVELS].create_index(
                [(f, ASCENDING) for f in (*KEY_FIELDS, "level", "chunk")],
                unique=True,
                name="level_key",
            )
            self.db[LEVELS].create_index(
                [(f, ASCENDING) for f in (*KEY_FIELDS, "level", "t1")], name="level_time"
            )
        except PyMongoError as exc:
            raise self._fail("creating indexes", exc) from None

    def write(self, key: SeriesKey, series: Series, provenance: Provenance) -> int:
        """Replace the stored series `key` with `series`; returns its number of chunks."""
        n = len(series)
        size = self.chunk_points
        t_ms = series.t.astype("datetime64[ms]").astype(np.int64)
        v = np.where(np.isfinite(series.v), series.v, np.nan)  # inf is no more usable than NaN
        digest = hashlib.sha256()
        chunk_ops = []
        for chunk, lo in enumerate(range(0, n, size)):
            doc = _chunk_doc(key, chunk, t_ms[lo : lo + size], v[lo : lo + size])
            digest.update(doc["tb"])
            digest.update(doc["vb"])
            chunk_ops.append(ReplaceOne({**key.filter(), "chunk": chunk}, doc, upsert=True))
        n_chunks = len(chunk_ops)
        levels = build_levels(t_ms, v)
        level_ops = [
            ReplaceOne({**key.filter(), "level": d["level"], "chunk": d["chunk"]}, d, upsert=True)
            for level in levels
            for d in _level_docs(key, level, size)
        ]
        header = self._header(key, series, provenance, n_chunks, levels)
        header.update(_chunk_index(t_ms, size))
        header["stats"] = stats(t_ms, v, digest.hexdigest())
        stale_levels = [
            DeleteMany({**key.filter(), "level": {"$nin": [lv.level for lv in levels]}}),
            *(
                DeleteMany(
                    {**key.filter(), "level": lv.level, "chunk": {"$gte": -(-len(lv) // size)}}
                )
                for lv in levels
            ),
        ]
        try:
            if chunk_ops:
                self.db[CHUNKS].bulk_write(chunk_ops, ordered=True)
            if level_ops:
                self.db[LEVELS].bulk_write(level_ops, ordered=True)
            self.db[SERIES].replace_one(key.filter(), header, upsert=True)
            self.db[CHUNKS].delete_many({**key.filter(), "chunk": {"$gte": n_chunks}})
            self.db[LEVELS].bulk_write(stale_levels, ordered=True)
        except PyMongoError as exc:
            raise self._fail(f"writing {key.stage}/{key.name} of {key.event}", exc) from None
        return n_chunks

    def _header(
        self,
        key: SeriesKey,
        series: Series,
        provenance: Provenance,
        n_chunks: int,
        levels: list[Level],
    ) -> dict[str, Any]:
        n = len(series)
        size = self.chunk_points
        t = series.t.astype("datetime64[ms]")
        return {
            **key.filter(),
            "schema_version": SCHEMA_VERSION,
            "units": series.units,
            "description": series.description,
            "dtype": "float64",
            "encoding": ENCODING,
            "n_points": n,
            "n_chunks": n_chunks,
            "start": t[0].tolist() if n else None,  # naive datetimes, which BSON stores as UTC
            "end": t[-1].tolist() if n else None,
            "levels": [
                {
                    "level": lv.level,
                    "points_per_bucket": lv.points_per_bucket,
                    "n_buckets": len(lv),
                    "n_chunks": -(-len(lv) // size),
                }
                for lv in levels
            ],
            "provenance": provenance.document(datetime.now(UTC)),
        }

    def read(self, key: SeriesKey) -> Series | None:
        """The whole stored series, reassembled from its chunks (None if there is none)."""
        try:
            header = self.db[SERIES].find_one(key.filter())
            if header is None:
                return None
            chunks = list(
                self.db[CHUNKS]
                .find({**key.filter(), "chunk": {"$lt": header["n_chunks"]}})
                .sort("chunk", ASCENDING)
            )
        except PyMongoError as exc:
            raise self._fail(f"reading {key.stage}/{key.name} of {key.event}", exc) from None
        if [c["chunk"] for c in chunks] != list(range(header["n_chunks"])):
            raise StorageError(f"series {key} is missing chunks")
        if header.get("schema_version", 1) >= SCHEMA_VERSION:
            t = np.concatenate([_array(c["tb"], "<i8") for c in chunks] or [np.zeros(0, "<i8")])
            v = np.concatenate([_array(c["vb"], "<f8") for c in chunks] or [np.zeros(0)])
            t = t.astype("datetime64[ms]")
        else:  # schema version 1: lists of datetimes and floats (null for NaN)
            t = np.array([x for c in chunks for x in c["t"]], dtype="datetime64[ms]")
            v = np.array([np.nan if x is None else x for c in chunks for x in c["v"]], dtype=float)
        return Series(header["name"], header["units"], header["description"], t, v.copy())
