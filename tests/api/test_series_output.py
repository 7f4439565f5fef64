"""Series text output: ISO timestamps written field by field, CSV cells as the JSON writes them."""

from __future__ import annotations

import csv
import io

import numpy as np
import orjson

from sunbeam_api.results.iso_time import END_MS, FIRST_MS, iso_z, iso_z_bytes
from sunbeam_api.results.output import CSV_ROWS_PER_PART, _csv_parts
from sunbeam_api.results.points import Points


def numpy_iso_z(t_ms: np.ndarray) -> list[str]:
    text = np.datetime_as_string(t_ms.astype("datetime64[ms]"), unit="ms")
    return [f"{s}Z" for s in text.tolist()]


def test_iso_text_matches_numpy_for_every_year_and_before_the_epoch() -> None:
    rng = np.random.default_rng(1)
    edges = [FIRST_MS, END_MS - 1, 0, -1, 1, 951_782_400_000]  # … and 2000-02-29
    t = np.concatenate([rng.integers(FIRST_MS, END_MS, 50_000), np.array(edges)])
    assert iso_z(t).tolist() == numpy_iso_z(t)
    assert iso_z_bytes(t).dtype == np.dtype("S24")
    assert iso_z(np.array([951_782_400_000]))[0] == "2000-02-29T00:00:00.000Z"


def test_iso_text_outside_years_1_to_9999_falls_back_to_numpy() -> None:
    t = np.array([END_MS, FIRST_MS - 1, 0])
    assert iso_z(t).tolist() == numpy_iso_z(t)
    assert iso_z(np.zeros(0, dtype=np.int64)).tolist() == []


def test_csv_cells_read_back_exactly_and_match_the_json_numbers() -> None:
    n = CSV_ROWS_PER_PART + 7  # two parts
    t = np.int64(1_751_371_200_000) + np.arange(n, dtype=np.int64) * 100
    v = np.random.default_rng(2).normal(0, 1e3, n)
    v[[0, 5, n - 1]] = np.nan
    v[[1, 2, 3]] = [1e-7, 1e17, -0.0]
    text = b"".join(_csv_parts(Points(t, v))).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["time", "value"] and len(rows) == n + 1
    assert [r[0] for r in rows[1:]] == numpy_iso_z(t)
    cells = [r[1] for r in rows[1:]]
    assert cells[0] == cells[5] == cells[-1] == ""
    back = np.array([float(c) if c else np.nan for c in cells])
    np.testing.assert_array_equal(back, v)
    in_json = orjson.loads(orjson.dumps(v[:10], option=orjson.OPT_SERIALIZE_NUMPY))
    assert cells[1:5] == [orjson.dumps(x).decode() for x in in_json[1:5]]
