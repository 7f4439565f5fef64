"""Downsampling a window to at most `max_points`, from raw points or from a pre-aggregated level.

- `minmax-lttb` (default, for plots): MinMax-LTTB from `tsdownsample` (native code). It keeps the
  peaks: from a level, its input is each bucket's real min and max points.
- `bucket-mean`: equal-count buckets; each becomes the mean of its times and of its finite values
  (NaN, i.e. null, when it has none, so gaps stay visible). From a level, the buckets' sums and
  counts combine exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tsdownsample import MinMaxLTTBDownsampler

from sunbeam_api.results.points import I64_MAX, I64_MIN, Points, Window

MINMAX_LTTB = "minmax-lttb"
BUCKET_MEAN = "bucket-mean"
LTTB_MIN_POINTS = 3  # LTTB keeps the first and last point and needs one more


def _edges(n: int, max_points: int) -> np.ndarray:
    return np.unique((np.arange(max_points + 1, dtype=np.int64) * n) // max_points)


def bucket_mean(points: Points, max_points: int) -> Points:
    edges = _edges(len(points), max_points)
    starts, sizes = edges[:-1], np.diff(edges)
    finite = np.isfinite(points.v)
    t = np.add.reduceat(points.t.astype(np.float64), starts) / sizes
    cnt = np.add.reduceat(finite.astype(np.int64), starts)
    sm = np.add.reduceat(np.where(finite, points.v, 0.0), starts)
    return Points(np.round(t).astype(np.int64), _mean(sm, cnt))


def _mean(sm: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, sm / np.maximum(cnt, 1), np.nan)


def minmax_lttb(points: Points, max_points: int) -> Points:
    finite = np.isfinite(points.v)
    t, v = points.t[finite], points.v[finite]
    if t.shape[0] <= max_points:
        return Points(t, v)
    keep = MinMaxLTTBDownsampler().downsample(t, v, n_out=max_points)
    return Points(t[keep], v[keep])


def _uses_minmax(max_points: int, method: str) -> bool:
    return method == MINMAX_LTTB and max_points >= LTTB_MIN_POINTS


def level_fields(max_points: int, method: str) -> tuple[str, ...]:
    """The fields of a level's documents that `downsample_levels` reads (fetch only those)."""
    if _uses_minmax(max_points, method):
        return ("tf", "tl", "tmin", "tmax", "mn", "mx")
    return ("tf", "tl", "sm", "cnt")


def downsample_points(points: Points, max_points: int, method: str) -> tuple[str, Points]:
    if _uses_minmax(max_points, method):
        return MINMAX_LTTB, minmax_lttb(points, max_points)
    return BUCKET_MEAN, bucket_mean(points, max_points)


def _column(docs: list[dict[str, Any]], field: str, dtype: str) -> np.ndarray:
    parts = [np.frombuffer(d[field], dtype=dtype) for d in docs]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def downsample_levels(
    docs: list[dict[str, Any]], window: Window, max_points: int, method: str
) -> tuple[str, Points]:
    """Downsample the buckets of one level (its chunk documents, in order) that meet the window."""
    tf, tl = _column(docs, "tf", "<i8"), _column(docs, "tl", "<i8")
    lo = I64_MIN if window.start_ms is None else window.start_ms
    hi = I64_MAX if window.end_ms is None else window.end_ms
    keep = (tl >= lo) & (tf <= hi)
    if _uses_minmax(max_points, method):
        # Each bucket's min and max are real points: MinMax-LTTB over them keeps every peak.
        t = np.concatenate([_column(docs, "tmin", "<i8")[keep], _column(docs, "tmax", "<i8")[keep]])
        v = np.concatenate([_column(docs, "mn", "<f8")[keep], _column(docs, "mx", "<f8")[keep]])
        order = np.argsort(t, kind="stable")
        inside = window.mask(t[order])
        return MINMAX_LTTB, minmax_lttb(Points(t[order][inside], v[order][inside]), max_points)
    sm, cnt = _column(docs, "sm", "<f8")[keep], _column(docs, "cnt", "<i8")[keep]
    mid = (tf[keep].astype(np.float64) + tl[keep]) / 2
    edges = _edges(mid.shape[0], max_points)
    if edges.shape[0] < 2:
        return BUCKET_MEAN, Points.empty()
    starts, sizes = edges[:-1], np.diff(edges)
    t = np.round(np.add.reduceat(mid, starts) / sizes).astype(np.int64)
    return BUCKET_MEAN, Points(t, _mean(np.add.reduceat(sm, starts), np.add.reduceat(cnt, starts)))
