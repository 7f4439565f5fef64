"""A series view as JSON or CSV, built with numpy and orjson (no per-point Python objects).

Every timestamp is ISO 8601 UTC with millisecond precision and a `Z` (docs/contracts.md); NaN
becomes null in JSON and an empty cell in CSV, and a value reads the same in both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from fastapi.responses import Response, StreamingResponse

from sunbeam_api.results.iso_time import iso_z, iso_z_bytes
from sunbeam_api.results.points import Points
from sunbeam_api.results.reader import View
from sunbeam_api.results.store import KEYS, SeriesInfo, safe_filename

CSV_ROWS_PER_PART = 50_000  # ~3 MB of text: small parts keep the export's memory flat


def iso_z_one(t: datetime | None) -> str | None:
    if t is None:
        return None
    return str(iso_z(np.array([round(t.timestamp() * 1000)], dtype=np.int64))[0])


def describe(view: View, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    """Everything about the view but its points, JSON-ready."""
    info = SeriesInfo.model_validate(view.header).model_dump(mode="json")
    return {
        **info,
        "window_start": iso_z_one(start),
        "window_end": iso_z_one(end),
        "points_in_window": view.points_in_window,
        "downsampling": view.downsampling,
        "method": view.method,
        "level": view.level,
    }


def json_response(view: View, start: datetime | None, end: datetime | None) -> Response:
    body = {**describe(view, start, end), "t": iso_z(view.points.t).tolist(), "v": view.points.v}
    # orjson writes NaN and infinity as null.
    content = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content, media_type="application/json")


def _csv_parts(points: Points) -> Iterator[bytes]:
    yield b"time,value\n"
    for lo in range(0, len(points), CSV_ROWS_PER_PART):
        part = slice(lo, lo + CSV_ROWS_PER_PART)
        yield _csv_rows(points.t[part], points.v[part])


def _csv_rows(t_ms: np.ndarray, v: np.ndarray) -> bytes:
    # Values as the JSON answer writes them (orjson: shortest round-trip form, null for NaN).
    values = orjson.dumps(np.ascontiguousarray(v), option=orjson.OPT_SERIALIZE_NUMPY)
    cells = np.array(values[1:-1].replace(b"null", b"").split(b","), dtype=np.bytes_)
    rows = np.strings.add(np.strings.add(iso_z_bytes(t_ms), b","), cells)
    return b"\n".join(rows.tolist()) + b"\n"


def csv_response(view: View, start: datetime | None, end: datetime | None) -> Response:
    meta = describe(view, start, end)
    filename = "_".join(safe_filename(meta[k]) for k in KEYS) + ".csv"
    return StreamingResponse(
        _csv_parts(view.points),
        media_type="text/csv",
        headers={
            # Units and provenance travel in a header so the CSV body stays plain two columns.
            "X-Sunbeam-Units": json.dumps(meta["units"]),
            "X-Sunbeam-Series": json.dumps(meta),
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )
