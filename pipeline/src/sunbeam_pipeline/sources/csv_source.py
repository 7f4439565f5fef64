"""Telemetry from CSV files: `<data_dir>/<event>.csv`, one row per sample.

Columns: `time` (ISO 8601 UTC, e.g. 2026-07-08T14:00:00.000Z) then any of the channel keys in
`sunbeam_pipeline.channels`; an empty cell is a missing sample. Unknown columns are ignored.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sunbeam_pipeline.channels import BY_KEY
from sunbeam_pipeline.config import EventConfig
from sunbeam_pipeline.errors import TelemetryFormatError, TelemetryNotFoundError
from sunbeam_pipeline.telemetry import Telemetry

_LOG = logging.getLogger(__name__)

TIME_COLUMN = "time"


def csv_path(data_dir: Path, event: str) -> Path:
    return data_dir / f"{event}.csv"


def format_times(t: np.ndarray) -> list[str]:
    return [f"{s}Z" for s in np.datetime_as_string(t.astype("datetime64[ms]"), unit="ms")]


def parse_times(values: list[str], path: Path) -> np.ndarray:
    try:
        # numpy parses naive ISO strings only; the format says UTC, so the zone marker goes.
        return np.array([v.removesuffix("Z") for v in values], dtype="datetime64[ms]")
    except ValueError as exc:
        raise TelemetryFormatError(f"{path}: bad time value ({exc})") from None


def _floats(values: tuple[str, ...], column: str, path: Path) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        try:
            out[i] = float(v) if v else np.nan
        except ValueError:
            raise TelemetryFormatError(
                f"{path}: line {i + 2}, column {column}: {v!r} is not a number"
            ) from None
    return out


class CsvTelemetrySource:
    name = "csv"

    def __init__(
        self,
        data_dir: Path,
        generate: Callable[[EventConfig, Path], object] | None = None,
        log: logging.Logger | logging.LoggerAdapter | None = None,
    ) -> None:
        self.data_dir = data_dir
        self._generate = generate
        self._log = log or _LOG

    def read(self, event: EventConfig) -> Telemetry:
        path = csv_path(self.data_dir, event.name)
        if not path.exists():
            if self._generate is None or event.simulate is None:
                raise TelemetryNotFoundError(
                    f"no telemetry file {path} for event {event.name} "
                    "(and no [events.simulate] table to generate one)"
                )
            self._log.info("No telemetry for %s yet: simulating it into %s", event.name, path)
            self._generate(event, path)
        return self._read_file(event.name, path)

    def _read_file(self, event: str, path: Path) -> Telemetry:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        if not rows or TIME_COLUMN not in rows[0]:
            raise TelemetryFormatError(f"{path}: the header has no {TIME_COLUMN!r} column")
        header, body = rows[0], rows[1:]
        width = len(header)
        for i, row in enumerate(body):
            if len(row) != width:
                raise TelemetryFormatError(
                    f"{path}: line {i + 2} has {len(row)} fields, the header has {width}"
                )
        columns: dict[str, tuple[str, ...]] = {h: () for h in header}
        if body:
            columns = dict(zip(header, zip(*body, strict=True), strict=True))
        times = parse_times(list(columns[TIME_COLUMN]), path)
        ignored = [c for c in header if c != TIME_COLUMN and c not in BY_KEY]
        if ignored:
            self._log.warning("%s: ignoring unknown column(s) %s", path, ", ".join(ignored))
        channels = {k: _floats(v, k, path) for k, v in columns.items() if k in BY_KEY}
        return Telemetry(event=event, t=times, channels=channels)
