"""Points of a series and the time window they are read in (ms since the epoch, UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

I64_MIN, I64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


@dataclass(frozen=True)
class Points:
    t: np.ndarray  # int64 ms since the epoch, UTC, ascending
    v: np.ndarray  # float64, NaN where there is no value

    @classmethod
    def empty(cls) -> Points:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))

    def __len__(self) -> int:
        return int(self.t.shape[0])


@dataclass(frozen=True)
class Window:
    start_ms: int | None
    end_ms: int | None

    def time_filter(self, lo: str = "t0", hi: str = "t1") -> dict[str, Any]:
        """Chunks whose [lo, hi] span meets the window."""
        out: dict[str, Any] = {}
        if self.start_ms is not None:
            out[hi] = {"$gte": _dt(self.start_ms)}
        if self.end_ms is not None:
            out[lo] = {"$lte": _dt(self.end_ms)}
        return out

    def mask(self, t: np.ndarray) -> np.ndarray:
        lo = I64_MIN if self.start_ms is None else self.start_ms
        hi = I64_MAX if self.end_ms is None else self.end_ms
        return (t >= lo) & (t <= hi)

    def cut(self, points: Points) -> Points:
        """The points inside the window, as views of `points` (times ascending, no copy)."""
        lo = 0 if self.start_ms is None else np.searchsorted(points.t, self.start_ms, "left")
        hi = len(points) if self.end_ms is None else np.searchsorted(points.t, self.end_ms, "right")
        return Points(points.t[lo:hi], points.v[lo:hi])


def _dt(ms: int) -> datetime:
    return np.datetime64(ms, "ms").astype(datetime)  # naive UTC, as BSON stores it


def to_ms(t: datetime | None) -> int | None:
    return None if t is None else round(t.timestamp() * 1000)
