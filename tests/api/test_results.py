"""Results endpoints against a real MongoDB wire server seeded with contract-shaped series."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest

from tests.support.api_stack import DB
from tests.support.mongo import Mongo
from tests.support.pipeline_store import SeriesKey, write_series

pytestmark = pytest.mark.usefixtures("seeded")


def test_list_filters_and_paginates(api: httpx.Client) -> None:
    everything = api.get("/results").json()
    assert everything["total"] == 4
    keys = [(i["ref"], i["event"], i["stage"], i["name"]) for i in everything["items"]]
    assert keys == sorted(keys)

    page = api.get("/results", params={"ref": "main", "limit": 2, "offset": 1}).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    assert page["items"][0]["name"] == "PackPower"

    filtered = api.get("/results", params={"stage": "energy"}).json()
    assert [i["name"] for i in filtered["items"]] == ["SOC"]
    item = filtered["items"][0]
    assert item["units"] == "%" and item["provenance"]["commit"] == "a" * 40


@pytest.mark.parametrize("limit", [0, 1001, -1, "many"])
def test_list_limit_is_bounded(api: httpx.Client, limit: object) -> None:
    r = api.get("/results", params={"limit": limit})
    assert r.status_code == 422 and "limit" in r.json()["detail"]


def test_distinct_values_of_each_key(api: httpx.Client) -> None:
    assert api.get("/results/distinct/ref").json() == ["feature/x", "main"]
    assert api.get("/results/distinct/event", params={"ref": "main"}).json() == [
        "FSGP_2025_Day_1",
        "FSGP_2025_Day_2",
    ]
    assert api.get("/results/distinct/name", params={"stage": "power"}).json() == [
        "MotorPower",
        "PackPower",
    ]
    r = api.get("/results/distinct/data")
    assert r.status_code == 422


def test_series_whole_with_units_provenance_and_nan_as_null(api: httpx.Client) -> None:
    r = api.get("/results/main/FSGP_2025_Day_2/energy/SOC")
    assert r.status_code == 200
    body = r.json()
    assert body["units"] == "%" and body["n_points"] == 500
    assert body["provenance"]["env_key"] == "env-aaaaaaaa"
    assert len(body["t"]) == len(body["v"]) == 500
    assert body["v"][9] is None and body["v"][10] == 10.0
    assert body["downsampling"] is None


@pytest.mark.parametrize(
    "path",
    [
        "/results/feature/x/FSGP_2025_Day_1/power/PackPower",
        "/results/feature%2Fx/FSGP_2025_Day_1/power/PackPower",
    ],
)
def test_ref_with_slash_by_path(api: httpx.Client, path: str) -> None:
    r = api.get(path, params={"max_points": 10})
    assert r.status_code == 200, r.text
    assert r.json()["ref"] == "feature/x"


def test_ref_with_slash_by_query_and_large_series_read_whole(api: httpx.Client) -> None:
    params = {"ref": "feature/x", "event": "FSGP_2025_Day_1", "stage": "power", "name": "PackPower"}
    body = api.get("/results/series", params=params).json()
    # 120,000 points were written in three chunks; all come back, in order.
    assert body["n_chunks"] == 3 and body["points_in_window"] == 120_000
    assert body["v"][49_999] is None and body["v"][50_000] == 50_000.0
    assert body["v"][-2] == 119_998.0
    assert body["t"] == sorted(body["t"])


def test_time_window_and_bucket_mean(api: httpx.Client) -> None:
    # Points are 1 s apart from 12:00:00; value i == i except every 10th (i % 10 == 9) is null.
    params = {
        "start": "2025-07-01T12:00:10Z",
        "end": "2025-07-01T12:00:29Z",
        "max_points": 2,
        "method": "bucket-mean",
    }
    body = api.get("/results/main/FSGP_2025_Day_1/power/PackPower", params=params).json()
    assert body["points_in_window"] == 20
    assert body["downsampling"] == "bucket-mean:20->2"
    # buckets 10..19 and 20..29 without the nulls at 19 and 29
    expected = [sum(range(10, 19)) / 9, sum(range(20, 29)) / 9]
    assert body["v"] == pytest.approx(expected)
    assert body["t"][0].startswith("2025-07-01T12:00:14.5")


def test_window_without_downsampling_is_inclusive(api: httpx.Client) -> None:
    params = {"start": "2025-07-01T12:00:10+00:00", "end": "2025-07-01T12:00:12+00:00"}
    body = api.get("/results/main/FSGP_2025_Day_1/power/PackPower", params=params).json()
    assert body["v"] == [10.0, 11.0, 12.0]


def test_csv_format(api: httpx.Client) -> None:
    params = {"format": "csv", "end": "2025-07-01T12:00:09Z"}
    r = api.get("/results/main/FSGP_2025_Day_1/power/MotorPower", params=params)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["time", "value"] and len(rows) == 11
    assert float(rows[1][1]) == 0.0 and rows[10][1] == ""
    assert json.loads(r.headers["x-sunbeam-units"]) == "W"
    meta = json.loads(r.headers["x-sunbeam-series"])
    assert meta["provenance"]["commit"] == "a" * 40 and "t" not in meta


def test_unknown_series_is_404(api: httpx.Client) -> None:
    r = api.get("/results/main/FSGP_2025_Day_1/power/Nope")
    assert r.status_code == 404 and "main/FSGP_2025_Day_1/power/Nope" in r.json()["detail"]


def test_start_after_end_is_rejected(api: httpx.Client) -> None:
    params = {"start": "2025-07-02T00:00:00Z", "end": "2025-07-01T00:00:00Z"}
    r = api.get("/results/main/FSGP_2025_Day_1/power/PackPower", params=params)
    assert r.status_code == 422 and "start" in r.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"ref": "$where"},
        {"event": "$ne"},
        {"name": "{'$ne': ''}"},
        {"stage": "$gt"},
        {"ref": "../etc"},
        {"ref": "bad ref"},
    ],
)
def test_operator_injection_in_filters_is_rejected(api: httpx.Client, params: dict) -> None:
    r = api.get("/results", params=params)
    assert r.status_code == 422, r.text
    assert "detail" in r.json() and "Traceback" not in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/results/%24where/FSGP_2025_Day_1/power/PackPower",
        "/results/main/%24ne/power/PackPower",
        "/results/main/FSGP_2025_Day_1/power/%24regex",
        "/results/distinct/%24where",
    ],
)
def test_operator_injection_in_paths_is_rejected(api: httpx.Client, path: str) -> None:
    r = api.get(path)
    assert r.status_code == 422, r.text


def test_bracket_and_json_operator_forms_do_not_reach_mongo(api: httpx.Client) -> None:
    # PHP/Express-style `name[$ne]=x` is an unknown parameter: refused, never a filter.
    r = api.get("/results", params={"name[$ne]": "x", "ref": "main"})
    assert r.status_code == 422 and "unknown query parameter 'name[$ne]'" in r.text, r.text
    r = api.get("/results", params={"name": json.dumps({"$where": "sleep(1000)"})})
    assert r.status_code == 422


def test_nan_never_reaches_json(api: httpx.Client) -> None:
    body = api.get("/results/main/FSGP_2025_Day_1/power/PackPower").json()
    assert all(v is None or math.isfinite(v) for v in body["v"])


# --- schema version 2, written by the pipeline's own store -----------------------------------

V2 = {"ref": "v2", "event": "Season", "stage": "power", "name": "PackPower"}
N_V2 = 200_000  # four 50k-point chunks, 10 Hz from 12:00:00


@pytest.fixture(scope="module")
def v2_series(mongo: Mongo) -> np.ndarray:
    client = mongo.client()
    try:
        rng = np.random.default_rng(5)
        values = np.sin(np.arange(N_V2) / 5000.0) * 100 + rng.normal(0, 1, N_V2)
        values[123_457] = 1000.0  # one spike a plot must not lose
        values[10:20] = np.nan
        db = client[DB]
        for ref in ("v2", "v2-no-raw", "v2-bad-edges", "v2-no-index", "v2-bad-spans"):
            write_series(db, SeriesKey(ref, V2["event"], V2["stage"], V2["name"]), values)
        # A read that touched these chunks would fail to decode them: it proves which it reads.
        db.series_chunks.update_many({"ref": "v2-no-raw"}, {"$set": {"vb": b"x", "tb": b"x"}})
        db.series_chunks.update_many(
            {"ref": "v2-bad-edges", "chunk": {"$in": [0, 3]}}, {"$set": {"vb": b"x", "tb": b"x"}}
        )
        # Written before the series document kept a chunk index: the reader asks the chunks.
        db.series.update_one(
            {"ref": "v2-no-index"}, {"$unset": {"chunk_t0": "", "chunk_t1": "", "chunk_n": ""}}
        )
        # Chunk documents claiming the wrong spans: a reader that uses the index never sees them.
        far = datetime(2000, 1, 1, tzinfo=UTC)
        db.series_chunks.update_many({"ref": "v2-bad-spans"}, {"$set": {"t0": far, "t1": far}})
    finally:
        client.close()
    return values


def _path(ref: str = "v2") -> str:
    return f"/results/{ref}/{V2['event']}/{V2['stage']}/{V2['name']}"


def test_v2_whole_view_comes_from_a_level_and_keeps_the_spike(
    api: httpx.Client, v2_series: np.ndarray
) -> None:
    body = api.get(_path(), params={"max_points": 1000}).json()
    assert body["schema_version"] == 2 and body["points_in_window"] == N_V2
    assert body["method"] == "minmax-lttb" and body["level"] == "L1:64"
    assert body["downsampling"] == f"minmax-lttb:{N_V2}->{len(body['v'])}"
    assert 900 <= len(body["v"]) <= 1000
    assert max(body["v"]) == 1000.0 and min(body["v"]) == pytest.approx(np.nanmin(v2_series))
    assert body["t"] == sorted(body["t"]) and all(t.endswith("Z") for t in body["t"])
    # The wide view never touches raw points: the same read works with every raw chunk unreadable.
    no_raw = api.get(_path("v2-no-raw"), params={"max_points": 1000})
    assert no_raw.status_code == 200 and no_raw.json()["v"] == body["v"]


def test_v2_bucket_mean_from_a_level_combines_sums_exactly(
    api: httpx.Client, v2_series: np.ndarray
) -> None:
    body = api.get(_path(), params={"max_points": 100, "method": "bucket-mean"}).json()
    assert body["method"] == "bucket-mean" and body["level"] == "L2:1024"
    assert len(body["v"]) == 100
    # 195 whole buckets of 1024 points plus a short one, split into 100 groups of 1-2 buckets.
    edges = (np.arange(101) * 196) // 100
    first = v2_series[: edges[1] * 1024]
    assert body["v"][0] == pytest.approx(np.nanmean(first))


def test_v2_window_at_full_resolution_is_exact(api: httpx.Client, v2_series: np.ndarray) -> None:
    # 12:10:00 .. 12:10:10 at 10 Hz is points 6000..6100, inclusive at both ends.
    params = {"start": "2025-07-01T12:10:00Z", "end": "2025-07-01T12:10:10Z"}
    body = api.get(_path(), params=params).json()
    assert body["level"] == "raw" and body["method"] is None and body["points_in_window"] == 101
    assert body["v"] == pytest.approx(v2_series[6000:6101].tolist())
    assert (
        body["t"][0] == "2025-07-01T12:10:00.000Z" and body["t"][-1] == "2025-07-01T12:10:10.000Z"
    )


def test_v2_window_inside_middle_chunks_skips_the_edges(
    api: httpx.Client, v2_series: np.ndarray
) -> None:
    # Points 60,000..60,100 (chunk 1): 12:00:00 + 6000 s = 13:40:00.
    params = {"start": "2025-07-01T13:40:00Z", "end": "2025-07-01T13:40:10Z"}
    r = api.get(_path("v2-bad-edges"), params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["points_in_window"] == 101 and body["level"] == "raw"
    assert body["v"] == pytest.approx(v2_series[60_000:60_101].tolist())
    # Downsampled, a window spanning chunks 1-2 also stays off the unreadable edges.
    params = {"start": "2025-07-01T13:30:00Z", "end": "2025-07-01T15:30:00Z", "max_points": 500}
    body = api.get(_path("v2-bad-edges"), params=params).json()
    assert body["points_in_window"] == 72_001 and len(body["v"]) <= 500


def test_timestamps_end_in_z_in_json_and_csv(api: httpx.Client) -> None:
    params = {"end": "2025-07-01T12:00:00.300Z"}
    body = api.get(_path(), params=params).json()
    r = api.get(_path(), params={**params, "format": "csv"})
    rows = list(csv.reader(io.StringIO(r.text)))
    assert (
        [row[0] for row in rows[1:]]
        == body["t"]
        == [
            "2025-07-01T12:00:00.000Z",
            "2025-07-01T12:00:00.100Z",
            "2025-07-01T12:00:00.200Z",
            "2025-07-01T12:00:00.300Z",
        ]
    )
    assert body["window_end"] == "2025-07-01T12:00:00.300Z"
    assert body["provenance"]["written_at"].endswith("Z") and body["start"].endswith("Z")


@pytest.mark.parametrize("ref", ["v2-no-index", "v2-bad-spans"])
def test_v2_window_finds_its_chunks_by_the_series_index_or_else_by_the_chunks(
    api: httpx.Client, v2_series: np.ndarray, ref: str
) -> None:
    # Points 49,990..50,010 straddle chunks 0 and 1: 12:00:00 + 4999 s = 13:23:19.
    params = {"start": "2025-07-01T13:23:19Z", "end": "2025-07-01T13:23:21Z"}
    body = api.get(_path(ref), params=params).json()
    assert body["points_in_window"] == 21 and body["level"] == "raw"
    assert body["v"] == pytest.approx(v2_series[49_990:50_011].tolist())
    listed = api.get("/results", params={"ref": ref}).json()["items"][0]
    assert listed["n_points"] == N_V2
