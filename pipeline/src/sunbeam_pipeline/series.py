"""The unit every stage produces and the store writes: one named, timestamped float64 series."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sunbeam_pipeline.errors import SunbeamPipelineError


@dataclass(frozen=True)
class Series:
    name: str
    units: str
    description: str
    t: np.ndarray  # datetime64[ms], ascending
    v: np.ndarray  # float64, NaN where there is no valid value

    def __post_init__(self) -> None:
        if self.t.shape != self.v.shape or self.t.ndim != 1:
            raise SunbeamPipelineError(
                f"series {self.name}: {self.t.shape[0]} timestamps but {self.v.shape[0]} values"
            )
        object.__setattr__(self, "t", self.t.astype("datetime64[ms]"))
        object.__setattr__(self, "v", np.asarray(self.v, dtype=np.float64))

    def __len__(self) -> int:
        return int(self.v.shape[0])


def seconds_since_start(t: np.ndarray) -> np.ndarray:
    """Elapsed seconds from the first timestamp (float64), the x axis for every integral."""
    ms = t.astype("datetime64[ms]").astype(np.int64)
    return (ms - ms[0]).astype(np.float64) / 1000.0 if ms.size else ms.astype(np.float64)


def cumulative_trapezoid(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Running trapezoid integral of y over x, starting at 0.

    An interval with a missing (NaN) end contributes nothing: cleanup has already bridged short
    gaps, so what is left is a real outage and inventing energy across it would be worse.
    """
    if y.size == 0:
        return y.astype(np.float64)
    steps = 0.5 * (y[1:] + y[:-1]) * np.diff(x)
    steps = np.where(np.isfinite(steps), steps, 0.0)
    return np.concatenate(([0.0], np.cumsum(steps)))


def fill_short_gaps(x: np.ndarray, y: np.ndarray, max_gap: float) -> np.ndarray:
    """Linearly bridge runs of NaN whose neighbours are at most max_gap apart in x."""
    y = y.astype(np.float64, copy=True)
    valid = np.flatnonzero(np.isfinite(y))
    if valid.size < 2:
        return y
    # Only gaps between two valid samples are bridged; leading/trailing NaN stay missing.
    left, right = valid[:-1], valid[1:]
    gappy = (right - left > 1) & (x[right] - x[left] <= max_gap)
    for lo, hi in zip(left[gappy], right[gappy], strict=True):
        y[lo + 1 : hi] = np.interp(x[lo + 1 : hi], [x[lo], x[hi]], [y[lo], y[hi]])
    return y
