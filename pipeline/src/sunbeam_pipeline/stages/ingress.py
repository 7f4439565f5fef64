"""ingress: read the event's raw telemetry from the configured source and store it as-is."""

from __future__ import annotations

from sunbeam_pipeline.channels import CHANNELS
from sunbeam_pipeline.errors import TelemetryFormatError
from sunbeam_pipeline.series import Series
from sunbeam_pipeline.stages.base import Stage, StageContext, StageResult


def run(ctx: StageContext) -> StageResult:
    telemetry = ctx.source.read(ctx.event)
    if telemetry.t.size == 0:
        raise TelemetryFormatError(f"event {ctx.event.name}: the telemetry has no samples")
    absent = [c.key for c in CHANNELS if c.key not in telemetry.channels]
    if absent:
        # Not fatal here: the stages that need these channels fail and report it themselves.
        ctx.log.warning("Event %s has no channel(s) %s", ctx.event.name, ", ".join(absent))
    series = tuple(
        Series(c.series, c.units, f"{c.description} (raw)", telemetry.t, telemetry.channels[c.key])
        for c in CHANNELS
        if c.key in telemetry.channels
    )
    ctx.log.info(
        "Read %d samples x %d channels of %s from %s",
        telemetry.t.size,
        len(series),
        ctx.event.name,
        ctx.source.name,
    )
    return StageResult(series=series, telemetry=telemetry)


STAGE = Stage("ingress", (), run, "raw telemetry from the source")
