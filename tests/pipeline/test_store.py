"""The MongoDB result store: chunking, NaN as null, whole-series replacement, unique keys."""

from __future__ import annotations

import hashlib

import bson
import numpy as np
import pymongo
import pytest

from sunbeam_pipeline.provenance import Provenance
from sunbeam_pipeline.series import Series
from sunbeam_pipeline.store import CHUNK_POINTS, ResultStore, SeriesKey, redact_uri

PROVENANCE = Provenance("main", "c0ffee", "env-1", None)
KEY = SeriesKey("main", "Big_Day", "power", "PackPower")


def make_series(n: int, seed: int = 0) -> Series:
    rng = np.random.default_rng(seed)
    t = np.datetime64("2026-07-08T14:00:00", "ms") + np.arange(n).astype("timedelta64[ms]") * 100
    v = rng.normal(500.0, 100.0, n)
    if n:
        v[rng.integers(0, n, 50)] = np.nan
    return Series("PackPower", "W", "test", t, v)


@pytest.fixture
def store(mongo_uri: str, request: pytest.FixtureRequest) -> ResultStore:
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    store = ResultStore(client[f"s_{hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]}"])
    store.ensure_indexes()
    return store


def test_large_series_is_chunked_and_read_back_whole(store: ResultStore) -> None:
    n = 2 * CHUNK_POINTS + 1234
    series = make_series(n)
    assert store.write(KEY, series, PROVENANCE) == 3

    header = store.db.series.find_one(KEY.filter())
    assert header["n_points"] == n and header["n_chunks"] == 3
    chunks = list(store.db.series_chunks.find(KEY.filter()).sort("chunk", 1))
    assert [c["n"] for c in chunks] == [CHUNK_POINTS, CHUNK_POINTS, 1234]
    for chunk in chunks:
        assert len(bson.encode(chunk)) < 16 * 1024 * 1024
    nan_at = np.flatnonzero(np.isnan(series.v))
    flat = [v for c in chunks for v in c["v"]]
    assert [i for i, v in enumerate(flat) if v is None] == nan_at.tolist()  # NaN stored as null

    back = store.read(KEY)
    assert back is not None and back.units == "W"
    np.testing.assert_array_equal(back.t, series.t)
    np.testing.assert_array_equal(back.v, series.v)  # NaN positions included


def test_rewrite_replaces_the_series_and_drops_stale_chunks(store: ResultStore) -> None:
    small_chunks = ResultStore(store.db, chunk_points=1000)
    assert small_chunks.write(KEY, make_series(3500), PROVENANCE) == 4
    shorter = make_series(1500, seed=1)
    assert small_chunks.write(KEY, shorter, PROVENANCE) == 2
    assert sorted(c["chunk"] for c in store.db.series_chunks.find(KEY.filter())) == [0, 1]
    back = small_chunks.read(KEY)
    assert back is not None
    np.testing.assert_array_equal(back.v, shorter.v)

    assert small_chunks.write(KEY, make_series(0), PROVENANCE) == 0
    assert store.db.series_chunks.count_documents(KEY.filter()) == 0
    assert store.db.series.find_one(KEY.filter())["start"] is None


def test_unique_indexes_refuse_duplicates(store: ResultStore) -> None:
    store.write(KEY, make_series(10), PROVENANCE)
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        store.db.series.insert_one(KEY.filter())
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        store.db.series_chunks.insert_one({**KEY.filter(), "chunk": 0})


def test_series_of_other_refs_are_untouched(store: ResultStore) -> None:
    other = SeriesKey("feature/x", KEY.event, KEY.stage, KEY.name)
    store.write(KEY, make_series(100), PROVENANCE)
    store.write(other, make_series(7), PROVENANCE)
    store.write(KEY, make_series(3), PROVENANCE)
    other_back = store.read(other)
    assert other_back is not None and len(other_back) == 7


def test_redact_uri_drops_credentials() -> None:
    assert redact_uri("mongodb://u:p4ss@db.example:27017/x?authSource=admin") == (
        "mongodb://db.example:27017"
    )
    assert redact_uri("mongodb+srv://u:p@cluster0.example") == "mongodb+srv://cluster0.example"
