"""Downsampling by bucket mean: equal-count buckets in time order.

Each bucket becomes one point: the mean of its timestamps and the mean of its non-null values
(null when the whole bucket is null, so gaps stay visible). Bucket mean keeps the level of noisy
telemetry, which a stride would alias.
"""

from __future__ import annotations

from datetime import UTC, datetime


def bucket_mean(
    times: list[datetime], values: list[float | None], max_points: int
) -> tuple[list[datetime], list[float | None]]:
    n = len(times)
    if max_points <= 0 or n <= max_points:
        return times, values
    out_t: list[datetime] = []
    out_v: list[float | None] = []
    for b in range(max_points):
        lo, hi = b * n // max_points, (b + 1) * n // max_points
        if hi <= lo:
            continue
        stamps = [t.timestamp() for t in times[lo:hi]]
        out_t.append(datetime.fromtimestamp(sum(stamps) / len(stamps), tz=UTC))
        present = [v for v in values[lo:hi] if v is not None]
        out_v.append(sum(present) / len(present) if present else None)
    return out_t, out_v
