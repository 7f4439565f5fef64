"""A closed race track as a polyline: position along it <-> GPS coordinates.

The geometry is a smooth star-shaped loop scaled to the configured length, placed at the configured
centre with a local equirectangular projection (exact enough over a few kilometres).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_EARTH_RADIUS_M = 6_371_008.8
_VERTICES = 1024
_PROJECT_BATCH = 2048  # points projected at once: bounds memory at batch x vertices floats


@dataclass(frozen=True)
class Track:
    name: str
    length_m: float
    center_lat: float
    center_lon: float
    _xy: np.ndarray = field(init=False, repr=False, compare=False)  # (V+1, 2), closed
    _s: np.ndarray = field(init=False, repr=False, compare=False)  # arc length at vertices

    def __post_init__(self) -> None:
        theta = np.linspace(0.0, 2.0 * np.pi, _VERTICES, endpoint=False)
        r = 1.0 + 0.3 * np.cos(2.0 * theta) + 0.08 * np.sin(3.0 * theta)
        xy = np.column_stack((r * np.cos(theta), 0.6 * r * np.sin(theta)))
        xy = np.vstack((xy, xy[:1]))
        seg = np.hypot(*np.diff(xy, axis=0).T)
        xy *= self.length_m / seg.sum()
        s = np.concatenate(([0.0], np.cumsum(seg * self.length_m / seg.sum())))
        s[-1] = self.length_m
        object.__setattr__(self, "_xy", xy)
        object.__setattr__(self, "_s", s)

    def _to_latlon(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lat = self.center_lat + np.degrees(y / _EARTH_RADIUS_M)
        lon = self.center_lon + np.degrees(
            x / (_EARTH_RADIUS_M * np.cos(np.radians(self.center_lat)))
        )
        return lat, lon

    def _to_xy(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = np.radians(lat - self.center_lat) * _EARTH_RADIUS_M
        x = (
            np.radians(lon - self.center_lon)
            * _EARTH_RADIUS_M
            * np.cos(np.radians(self.center_lat))
        )
        return x, y

    def position(self, distance_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """GPS (lat, lon) of points at the given distances along the track (wrapping each lap)."""
        s = np.mod(distance_m, self.length_m)
        x = np.interp(s, self._s, self._xy[:, 0])
        y = np.interp(s, self._s, self._xy[:, 1])
        return self._to_latlon(x, y)

    def project(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Distance along the track [0, length) of the nearest track point; NaN where no fix."""
        px, py = self._to_xy(np.asarray(lat, float), np.asarray(lon, float))
        out = np.full(px.shape, np.nan)
        a, b = self._xy[:-1], self._xy[1:]
        d = b - a
        dd = (d * d).sum(axis=1)
        ok = np.flatnonzero(np.isfinite(px) & np.isfinite(py))
        for start in range(0, ok.size, _PROJECT_BATCH):
            idx = ok[start : start + _PROJECT_BATCH]
            qx = px[idx, None] - a[None, :, 0]
            qy = py[idx, None] - a[None, :, 1]
            u = np.clip((qx * d[:, 0] + qy * d[:, 1]) / dd, 0.0, 1.0)
            dist2 = (qx - u * d[:, 0]) ** 2 + (qy - u * d[:, 1]) ** 2
            best = np.argmin(dist2, axis=1)
            seg_len = self._s[best + 1] - self._s[best]
            out[idx] = self._s[best] + u[np.arange(idx.size), best] * seg_len
        return np.mod(out, self.length_m)
