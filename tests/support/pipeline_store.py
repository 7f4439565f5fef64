"""Write results with the pipeline's own store (pipeline/src, imported as the agent runs it).

The pipeline is its own uv project; its code needs only numpy and pymongo, which the root
environment has too, so API and UI tests write series exactly as a pipeline run does.
"""

from __future__ import annotations

import numpy as np
import pymongo

import tests.support.pipeline_env  # noqa: F401  (puts pipeline/src on sys.path)
from sunbeam_pipeline.provenance import Provenance
from sunbeam_pipeline.series import Series
from sunbeam_pipeline.store import ResultStore, SeriesKey

__all__ = ["Provenance", "ResultStore", "Series", "SeriesKey", "write_series"]

T0 = np.datetime64("2025-07-01T12:00:00", "ms")


def write_series(
    db: pymongo.database.Database,
    key: SeriesKey,
    values: np.ndarray,
    *,
    step_ms: int = 100,
    units: str = "W",
    commit: str = "b" * 40,
) -> Series:
    t = T0 + np.arange(values.shape[0]).astype("timedelta64[ms]") * step_ms
    series = Series(key.name, units, f"{key.name} of {key.stage}", t, values)
    store = ResultStore(db)
    store.ensure_indexes()
    store.write(key, series, Provenance(key.ref, commit, "env-" + commit[:8], None))
    return series
