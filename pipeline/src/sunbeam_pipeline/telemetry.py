"""Raw telemetry of one event and the seam every telemetry back end plugs into.

A `TelemetrySource` returns every channel it has for an event on ONE common, ascending time grid
(datetime64[ms]); channels it does not have are simply absent, and the stages that need them fail
on their own. Resampling to that grid is the source's job (a file written by the simulator is
already on it; an InfluxDB source would ask the server for it with `aggregateWindow`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from sunbeam_pipeline.config import EventConfig
from sunbeam_pipeline.errors import MissingChannelError, TelemetryFormatError


@dataclass(frozen=True)
class Telemetry:
    event: str
    t: np.ndarray  # datetime64[ms], strictly ascending
    channels: dict[str, np.ndarray] = field(default_factory=dict)  # key -> float64, NaN = missing

    def __post_init__(self) -> None:
        if self.t.size and np.any(np.diff(self.t.astype(np.int64)) <= 0):
            raise TelemetryFormatError(f"{self.event}: timestamps are not strictly ascending")
        for key, values in self.channels.items():
            if values.shape != self.t.shape:
                raise TelemetryFormatError(
                    f"{self.event}: channel {key} has {values.size} samples, time has {self.t.size}"
                )

    def require(self, *keys: str) -> list[np.ndarray]:
        missing = [k for k in keys if k not in self.channels]
        if missing:
            raise MissingChannelError(
                f"event {self.event} has no telemetry channel(s) {', '.join(missing)}"
            )
        return [self.channels[k] for k in keys]


@runtime_checkable
class TelemetrySource(Protocol):
    """Where raw telemetry comes from. Implementations: CsvTelemetrySource (files)."""

    name: str

    def read(self, event: EventConfig) -> Telemetry:
        """All channels of the event on one time grid.

        Raises TelemetryNotFoundError when the source has nothing for the event and
        TelemetryFormatError when what it has cannot be read.
        """
        ...
