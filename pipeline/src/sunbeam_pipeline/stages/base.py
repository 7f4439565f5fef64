"""What a stage is: a name, the stages it needs, and a function from their results to series."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sunbeam_pipeline.config import EventConfig, Settings
from sunbeam_pipeline.errors import MissingChannelError
from sunbeam_pipeline.series import Series
from sunbeam_pipeline.telemetry import Telemetry, TelemetrySource

_LOG = logging.getLogger("sunbeam_pipeline")


@dataclass(frozen=True)
class StageResult:
    series: tuple[Series, ...]
    # Ingress and cleanup hand the whole (raw or cleaned) telemetry on to later stages.
    telemetry: Telemetry | None = None

    def get(self, name: str) -> Series:
        for s in self.series:
            if s.name == name:
                return s
        raise MissingChannelError(f"no series {name!r} among {[s.name for s in self.series]}")


@dataclass(frozen=True)
class StageContext:
    event: EventConfig
    settings: Settings
    source: TelemetrySource
    upstream: Mapping[str, StageResult] = field(default_factory=dict)
    log: logging.Logger | logging.LoggerAdapter = _LOG

    def cleaned(self) -> Telemetry:
        """The cleaned telemetry (every stage after cleanup works from it)."""
        telemetry = self.upstream["cleanup"].telemetry
        assert telemetry is not None  # cleanup always returns it
        return telemetry


@dataclass(frozen=True)
class Stage:
    name: str
    depends_on: tuple[str, ...]
    run: Callable[[StageContext], StageResult]
    summary: str
