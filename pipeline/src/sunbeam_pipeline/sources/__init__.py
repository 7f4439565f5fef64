"""Telemetry back ends, chosen by `[source] type` in sunbeam.toml.

To add one (InfluxDB, say): write a class with `name` and `read(event) -> Telemetry` (see
`sunbeam_pipeline.telemetry.TelemetrySource`) in a module here, give it its settings table, and
add a branch below. Nothing else in the pipeline changes: stages only ever see `Telemetry`.
"""

from __future__ import annotations

import logging

from sunbeam_pipeline.config import Settings
from sunbeam_pipeline.errors import ConfigError
from sunbeam_pipeline.sources.csv_source import CsvTelemetrySource
from sunbeam_pipeline.telemetry import TelemetrySource

SOURCE_TYPES = ("csv",)


def build_source(
    settings: Settings, log: logging.Logger | logging.LoggerAdapter | None = None
) -> TelemetrySource:
    kind = settings.source.type
    if kind == "csv":
        writer = None
        if settings.source.generate_missing:
            # Imported here so a source that never simulates does not load the simulator.
            from sunbeam_pipeline.simulator import write_simulated_csv

            def writer(event, path):  # type: ignore[no-untyped-def]
                return write_simulated_csv(event, settings, path)

        return CsvTelemetrySource(settings.data_dir, generate=writer, log=log)
    raise ConfigError(
        f"{settings.config_path}: [source] type {kind!r} is not supported "
        f"(supported: {', '.join(SOURCE_TYPES)})"
    )


__all__ = ["SOURCE_TYPES", "CsvTelemetrySource", "TelemetrySource", "build_source"]
