"""Seed MongoDB with result series shaped as docs/contracts.md describes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from pymongo import MongoClient

CHUNK_POINTS = 50_000
T0 = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)


def seed_series(
    client: MongoClient,
    db_name: str,
    *,
    ref: str,
    event: str,
    stage: str,
    name: str,
    values: list[float],
    units: str = "W",
    step_s: float = 1.0,
    chunk_points: int = CHUNK_POINTS,
    commit: str = "a" * 40,
) -> list[datetime]:
    db = client[db_name]
    # The same index names as the pipeline's store, which writes into the same database.
    key_fields = [("ref", 1), ("event", 1), ("stage", 1), ("name", 1)]
    db.series.create_index(key_fields, unique=True, name="series_key")
    db.series_chunks.create_index([*key_fields, ("chunk", 1)], unique=True, name="chunk_key")
    key = {"ref": ref, "event": event, "stage": stage, "name": name}
    times = [T0 + timedelta(seconds=i * step_s) for i in range(len(values))]
    n_chunks = max(1, math.ceil(len(values) / chunk_points))
    for c in range(n_chunks):
        lo, hi = c * chunk_points, (c + 1) * chunk_points
        v = [None if math.isnan(x) else x for x in values[lo:hi]]
        db.series_chunks.replace_one(
            {**key, "chunk": c},
            {**key, "chunk": c, "t": times[lo:hi], "v": v, "n": len(v)},
            upsert=True,
        )
    db.series_chunks.delete_many({**key, "chunk": {"$gte": n_chunks}})
    db.series.replace_one(
        key,
        {
            **key,
            "units": units,
            "description": f"{name} of {stage}",
            "dtype": "float64",
            "n_points": len(values),
            "n_chunks": n_chunks,
            "start": times[0],
            "end": times[-1],
            "provenance": {
                "ref": ref,
                "commit": commit,
                "env_key": "env-" + commit[:8],
                "flow_run_id": "00000000-0000-0000-0000-000000000001",
                "written_at": T0,
            },
        },
        upsert=True,
    )
    return times
