"""What the store writes next to the raw points: summary stats and pre-aggregated levels.

A level groups `points_per_bucket` consecutive raw points into one bucket with its min, max, sum
and count of finite values and the times of its first, last, min and max point, so a reader can
answer a wide view (or a MinMax-LTTB plot, which needs the peaks) from a few thousand buckets
instead of millions of points. See docs/contracts.md (schema version 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVEL_POINTS = (64, 1024, 16384)  # points per bucket at levels 1, 2, 3


@dataclass(frozen=True)
class Level:
    level: int
    points_per_bucket: int
    tf: np.ndarray  # int64 ms: first, last, argmin and argmax time of each bucket
    tl: np.ndarray
    tmin: np.ndarray
    tmax: np.ndarray
    mn: np.ndarray  # float64: min, max and sum of the finite values (NaN, NaN, 0 when none)
    mx: np.ndarray
    sm: np.ndarray
    cnt: np.ndarray  # int64: finite values per bucket

    def __len__(self) -> int:
        return int(self.tf.shape[0])


def build_level(level: int, size: int, t_ms: np.ndarray, v: np.ndarray) -> Level:
    n = v.shape[0]
    starts = np.arange(0, n, size)
    finite = np.isfinite(v)
    cnt = np.add.reduceat(finite.astype(np.int64), starts)
    sm = np.add.reduceat(np.where(finite, v, 0.0), starts)
    # argmin/argmax per bucket on a padded (buckets x size) view; NaN never wins.
    pad = (-n) % size
    lo = np.pad(np.where(finite, v, np.inf), (0, pad), constant_values=np.inf).reshape(-1, size)
    hi = np.pad(np.where(finite, v, -np.inf), (0, pad), constant_values=-np.inf).reshape(-1, size)
    imin = starts + lo.argmin(axis=1)
    imax = starts + hi.argmax(axis=1)
    empty = cnt == 0
    last = np.minimum(starts + size, n) - 1
    return Level(
        level=level,
        points_per_bucket=size,
        tf=t_ms[starts],
        tl=t_ms[last],
        tmin=t_ms[np.minimum(imin, n - 1)],
        tmax=t_ms[np.minimum(imax, n - 1)],
        mn=np.where(empty, np.nan, v[np.minimum(imin, n - 1)]),
        mx=np.where(empty, np.nan, v[np.minimum(imax, n - 1)]),
        sm=sm,
        cnt=cnt,
    )


def build_levels(t_ms: np.ndarray, v: np.ndarray) -> list[Level]:
    return [
        build_level(i, size, t_ms, v)
        for i, size in enumerate(LEVEL_POINTS, start=1)
        if v.shape[0] > size
    ]


def stats(t_ms: np.ndarray, v: np.ndarray, digest: str) -> dict[str, float | int | str | None]:
    finite = np.isfinite(v)
    n_valid = int(finite.sum())
    if n_valid == 0:
        return {
            "n_valid": 0,
            "mean": None,
            "min": None,
            "max": None,
            "integral_s": None,
            "digest": digest,
        }
    seconds = t_ms.astype(np.float64) / 1000.0
    steps = 0.5 * (v[1:] + v[:-1]) * np.diff(seconds)
    good = v[finite]
    return {
        "n_valid": n_valid,
        "mean": float(good.mean()),
        "min": float(good.min()),
        "max": float(good.max()),
        # An interval with a missing end adds nothing (as the pipeline's own integrals do).
        "integral_s": float(steps[np.isfinite(steps)].sum()),
        "digest": digest,
    }
