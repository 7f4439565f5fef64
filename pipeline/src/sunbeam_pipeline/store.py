"""Results in MongoDB, laid out as docs/contracts.md says.

- `series`: one document per (ref, event, stage, name): units, description, point count, chunk
  count, time span and provenance.
- `series_chunks`: the points, at most CHUNK_POINTS per document, keyed by chunk number.
Both have unique indexes on their keys and every write is an upsert by key, so a re-run replaces
a series whole instead of duplicating it. Chunks are written before the series document and
stale chunks (past the new chunk count) deleted after it, so a reader that follows `n_chunks`
never sees a half-written series.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pymongo
from pymongo import ASCENDING, ReplaceOne
from pymongo.database import Database
from pymongo.errors import PyMongoError

from sunbeam_pipeline.config import MongoConfig
from sunbeam_pipeline.errors import StorageError
from sunbeam_pipeline.provenance import Provenance
from sunbeam_pipeline.series import Series

CHUNK_POINTS = 50_000
SERIES = "series"
CHUNKS = "series_chunks"
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


def _bson_values(v: np.ndarray) -> list[float | None]:
    # NaN (and inf) are not numbers anyone downstream can use: they are stored as null.
    return [x if np.isfinite(x) else None for x in v.tolist()]


def _bson_times(t: np.ndarray) -> list[datetime]:
    return t.astype("datetime64[ms]").tolist()  # naive datetimes, which BSON stores as UTC


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
        except PyMongoError as exc:
            raise self._fail("creating indexes", exc) from None

    def write(self, key: SeriesKey, series: Series, provenance: Provenance) -> int:
        """Replace the stored series `key` with `series`; returns its number of chunks."""
        n = len(series)
        size = self.chunk_points
        n_chunks = -(-n // size)
        chunk_ops = []
        for chunk in range(n_chunks):
            part = slice(chunk * size, (chunk + 1) * size)
            values = _bson_values(series.v[part])
            doc = {
                **key.filter(),
                "chunk": chunk,
                "t": _bson_times(series.t[part]),
                "v": values,
                "n": len(values),
            }
            chunk_ops.append(ReplaceOne({**key.filter(), "chunk": chunk}, doc, upsert=True))
        now = datetime.now(UTC)
        header: dict[str, Any] = {
            **key.filter(),
            "units": series.units,
            "description": series.description,
            "dtype": "float64",
            "n_points": n,
            "n_chunks": n_chunks,
            "start": _bson_times(series.t[:1])[0] if n else None,
            "end": _bson_times(series.t[-1:])[0] if n else None,
            "provenance": provenance.document(now),
        }
        try:
            if chunk_ops:
                self.db[CHUNKS].bulk_write(chunk_ops, ordered=True)
            self.db[SERIES].replace_one(key.filter(), header, upsert=True)
            self.db[CHUNKS].delete_many({**key.filter(), "chunk": {"$gte": n_chunks}})
        except PyMongoError as exc:
            raise self._fail(f"writing {key.stage}/{key.name} of {key.event}", exc) from None
        return n_chunks

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
        t = np.array([x for c in chunks for x in c["t"]], dtype="datetime64[ms]")
        v = np.array([np.nan if x is None else x for c in chunks for x in c["v"]], dtype=float)
        return Series(header["name"], header["units"], header["description"], t, v)
