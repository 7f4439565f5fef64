"""cleanup: drop physically impossible readings and bridge short dropouts, channel by channel."""

from __future__ import annotations

import numpy as np

from sunbeam_pipeline.channels import BY_KEY
from sunbeam_pipeline.series import Series, fill_short_gaps, seconds_since_start
from sunbeam_pipeline.stages.base import Stage, StageContext, StageResult
from sunbeam_pipeline.telemetry import Telemetry


def run(ctx: StageContext) -> StageResult:
    raw = ctx.upstream["ingress"].telemetry
    assert raw is not None  # ingress always returns it
    x = seconds_since_start(raw.t)
    channels = dict(raw.channels)
    if "gps_lat" in channels and "gps_lon" in channels:
        # (0, 0) is what receivers report without a fix, not a place the car has been.
        no_fix = (channels["gps_lat"] == 0.0) & (channels["gps_lon"] == 0.0)
        channels["gps_lat"] = np.where(no_fix, np.nan, channels["gps_lat"])
        channels["gps_lon"] = np.where(no_fix, np.nan, channels["gps_lon"])

    cleaned: dict[str, np.ndarray] = {}
    for key, values in channels.items():
        channel = BY_KEY[key]
        plausible = (values >= channel.low) & (values <= channel.high)
        missing = int(np.isnan(values).sum())
        rejected = int(np.sum(np.isfinite(values) & ~plausible))
        cleaned[key] = fill_short_gaps(
            x, np.where(plausible, values, np.nan), ctx.settings.cleanup.max_gap_s
        )
        if missing or rejected:
            ctx.log.info(
                "%s: %d missing and %d out of range; %d still missing after bridging",
                key,
                missing,
                rejected,
                int(np.isnan(cleaned[key]).sum()),
            )
    series = tuple(
        Series(BY_KEY[k].series, BY_KEY[k].units, f"{BY_KEY[k].description} (cleaned)", raw.t, v)
        for k, v in cleaned.items()
    )
    return StageResult(series=series, telemetry=Telemetry(raw.event, raw.t, cleaned))


STAGE = Stage("cleanup", ("ingress",), run, "plausible ranges, short gaps bridged")
