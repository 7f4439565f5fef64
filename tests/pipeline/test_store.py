"""The MongoDB result store: chunking, NaN as null, whole-series replacement, unique keys."""

from __future__ import annotations

import hashlib

import bson
import numpy as np
import pymongo
import pytest

from sunbeam_pipeline.provenance import Provenance
from sunbeam_pipeline.series import Series
from sunbeam_pipeline.store import CHUNK_POINTS, LEVELS, ResultStore, SeriesKey, redact_uri

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
    assert header["schema_version"] == 2 and header["encoding"] == "i64ms-f64le"
    # Each chunk knows its first and last time, so a windowed read can skip the others.
    ms = series.t.astype(np.int64)
    for c, chunk in enumerate(chunks):
        lo, hi = c * CHUNK_POINTS, min((c + 1) * CHUNK_POINTS, n) - 1
        assert int(chunk["t0"].timestamp() * 1000) == ms[lo]
        assert int(chunk["t1"].timestamp() * 1000) == ms[hi]
    # The series document repeats every chunk's span and count, so a reader needs no chunk query.
    index = {
        f: np.frombuffer(header[f], "<i8").tolist() for f in ("chunk_t0", "chunk_t1", "chunk_n")
    }
    assert index["chunk_n"] == [c["n"] for c in chunks]
    assert index["chunk_t0"] == [int(c["t0"].timestamp() * 1000) for c in chunks]
    assert index["chunk_t1"] == [int(c["t1"].timestamp() * 1000) for c in chunks]
    flat = np.concatenate([np.frombuffer(c["vb"], "<f8") for c in chunks])
    np.testing.assert_array_equal(np.isnan(flat), np.isnan(series.v))

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


def test_levels_hold_min_max_sum_and_count_of_each_bucket(store: ResultStore) -> None:
    series = make_series(70_000, seed=3)
    store.write(KEY, series, PROVENANCE)
    header = store.db.series.find_one(KEY.filter())
    assert [(lv["level"], lv["points_per_bucket"], lv["n_buckets"]) for lv in header["levels"]] == [
        (1, 64, 1094),
        (2, 1024, 69),
        (3, 16384, 5),
    ]
    docs = list(store.db[LEVELS].find({**KEY.filter(), "level": 2}).sort("chunk", 1))
    mx = np.concatenate([np.frombuffer(d["mx"], "<f8") for d in docs])
    cnt = np.concatenate([np.frombuffer(d["cnt"], "<i8") for d in docs])
    tmax = np.concatenate([np.frombuffer(d["tmax"], "<i8") for d in docs])
    for b in (0, 33, 68):  # first, middle, and the short last bucket
        part = series.v[b * 1024 : (b + 1) * 1024]
        assert mx[b] == np.nanmax(part) and cnt[b] == np.isfinite(part).sum()
        i = b * 1024 + int(np.nanargmax(part))
        assert tmax[b] == series.t[i].astype(np.int64)  # the peak is a real point
    stats = header["stats"]
    assert stats["n_valid"] == np.isfinite(series.v).sum()
    assert stats["max"] == np.nanmax(series.v) and stats["mean"] == pytest.approx(
        np.nanmean(series.v)
    )


def test_digest_tells_identical_from_changed(store: ResultStore) -> None:
    other = SeriesKey("feature/x", KEY.event, KEY.stage, KEY.name)
    store.write(KEY, make_series(500), PROVENANCE)
    store.write(other, make_series(500), PROVENANCE)
    digest = {d["ref"]: d["stats"]["digest"] for d in store.db.series.find()}
    assert digest["main"] == digest["feature/x"]
    store.write(other, make_series(500, seed=9), PROVENANCE)
    assert store.db.series.find_one(other.filter())["stats"]["digest"] != digest["main"]


def test_rewrite_drops_levels_a_shorter_series_no_longer_has(store: ResultStore) -> None:
    small_chunks = ResultStore(store.db, chunk_points=100)
    small_chunks.write(KEY, make_series(20_000), PROVENANCE)
    assert store.db[LEVELS].count_documents({**KEY.filter(), "level": 3}) == 1
    assert store.db[LEVELS].count_documents({**KEY.filter(), "level": 1}) == 4
    small_chunks.write(KEY, make_series(700), PROVENANCE)
    assert store.db[LEVELS].distinct("level", KEY.filter()) == [1]
    assert store.db[LEVELS].count_documents(KEY.filter()) == 1  # 11 buckets: one chunk


def test_series_written_in_schema_version_1_is_still_read(store: ResultStore) -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2025, 7, 1, 12, tzinfo=UTC)
    store.db.series.insert_one({**KEY.filter(), "units": "W", "description": "old", "n_chunks": 1})
    store.db.series_chunks.insert_one(
        {
            **KEY.filter(),
            "chunk": 0,
            "t": [t0 + timedelta(seconds=i) for i in range(3)],
            "v": [1.0, None, 3.0],
            "n": 3,
        }
    )
    back = store.read(KEY)
    assert back is not None
    np.testing.assert_array_equal(back.v, [1.0, np.nan, 3.0])
    assert back.t[2] == np.datetime64("2025-07-01T12:00:02", "ms")
