"""Results endpoints against a real MongoDB wire server seeded with contract-shaped series."""

from __future__ import annotations

import csv
import io
import json
import math

import httpx
import pytest

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
    params = {"start": "2025-07-01T12:00:10Z", "end": "2025-07-01T12:00:29Z", "max_points": 2}
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
    # PHP/Express-style `name[$ne]=x` is just an unknown parameter: the filter stays empty.
    r = api.get("/results", params={"name[$ne]": "x", "ref": "main"})
    assert r.status_code == 200 and r.json()["total"] == 3
    r = api.get("/results", params={"name": json.dumps({"$where": "sleep(1000)"})})
    assert r.status_code == 422


def test_nan_never_reaches_json(api: httpx.Client) -> None:
    body = api.get("/results/main/FSGP_2025_Day_1/power/PackPower").json()
    assert all(v is None or math.isfinite(v) for v in body["v"])
