"""Millisecond timestamps as ISO 8601 UTC text ending in `Z`, a million at a time.

`numpy.datetime_as_string` formats every element through its generic path (~1 µs each); a series
export needs millions. The text is fixed-width (`YYYY-MM-DDTHH:MM:SS.mmmZ`, 24 bytes) for years
1..9999, so each field is written as digits straight into a bytes matrix; only the few distinct
days go through numpy's formatter. Times outside those years (never seen in practice) take numpy's
path, which writes them correctly in its own longer form.
"""

from __future__ import annotations

import numpy as np

WIDTH = 24
DAY_MS = 86_400_000
FIRST_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
END_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z
# (first column, digits, milliseconds per unit, units per next field) of each time-of-day field.
FIELDS = ((11, 2, 3_600_000, 24), (14, 2, 60_000, 60), (17, 2, 1000, 60), (20, 3, 1, 1000))


def iso_z_bytes(t_ms: np.ndarray) -> np.ndarray:
    """`t_ms` (int64 ms since the epoch) as an array of 24-byte ASCII strings (`S24`)."""
    t_ms = np.asarray(t_ms, dtype=np.int64)
    if t_ms.size and (t_ms.min() < FIRST_MS or t_ms.max() >= END_MS):
        return _numpy_iso_z(t_ms)
    days, of_day = np.divmod(t_ms, DAY_MS)
    unique, which = np.unique(days, return_inverse=True)
    dates = np.datetime_as_string(unique.astype("datetime64[D]")).astype("S10")
    out = np.empty((t_ms.shape[0], WIDTH), dtype=np.uint8)
    out[:, :10] = dates.view(np.uint8).reshape(-1, 10)[which]
    out[:, [10, 13, 16, 19, 23]] = np.frombuffer(b"T::.Z", dtype=np.uint8)
    for col, digits, unit, modulo in FIELDS:
        value = (of_day // unit) % modulo
        for d in range(digits):
            out[:, col + digits - 1 - d] = 48 + (value // 10**d) % 10
    return out.view(f"S{WIDTH}").reshape(-1)


def _numpy_iso_z(t_ms: np.ndarray) -> np.ndarray:
    text = np.datetime_as_string(t_ms.astype("datetime64[ms]"), unit="ms")
    return np.char.add(text, "Z").astype(np.bytes_)


def iso_z(t_ms: np.ndarray) -> np.ndarray:
    """The same as text (`str`) elements, for JSON."""
    return iso_z_bytes(t_ms).astype(np.str_)
