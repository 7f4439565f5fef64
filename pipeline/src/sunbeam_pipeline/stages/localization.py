"""localization: where the car is on the track, and which lap it is on.

- TrackDistance: GPS fix projected on the track polyline (metres from the start line, per fix).
- Distance: integrated speed since the start of the event (robust to GPS dropouts).
- LapIndex: floor((start position + Distance) / track length). The start position is where all
  GPS fixes, wound back by the distance driven so far, agree the car was at the first sample;
  lap 0 is the (usually partial) lap the car starts on.
"""

from __future__ import annotations

import numpy as np

from sunbeam_pipeline.series import Series, cumulative_trapezoid, seconds_since_start
from sunbeam_pipeline.stages.base import Stage, StageContext, StageResult
from sunbeam_pipeline.track import Track


def start_position(on_track: np.ndarray, distance: np.ndarray, length: float) -> float | None:
    """Where on the track the event started: every fix says (its position - distance so far);
    their circular median ignores GPS noise and the odd bad fix. None without any fix."""
    fixes = np.isfinite(on_track)
    if not fixes.any():
        return None
    says = (on_track[fixes] - distance[fixes]) % length
    ref = says[0]
    offset = np.median((says - ref + length / 2) % length - length / 2)
    return float((ref + offset) % length)


def run(ctx: StageContext) -> StageResult:
    telemetry = ctx.cleaned()
    speed, lat, lon = telemetry.require("speed", "gps_lat", "gps_lon")
    track = Track(**vars(ctx.settings.track))
    x = seconds_since_start(telemetry.t)

    on_track = track.project(lat, lon)
    distance = cumulative_trapezoid(x, speed)
    start = start_position(on_track, distance, track.length_m)
    if start is None:
        start = 0.0
        ctx.log.warning("%s: no GPS fix at all; laps counted from the start line", ctx.event.name)
    laps = np.floor((start + distance) / track.length_m)
    ctx.log.info(
        "%s: %.2f km driven, %d lap(s) of %s started",
        ctx.event.name,
        distance[-1] / 1000.0,
        int(laps[-1]) + 1,
        track.name,
    )
    t = telemetry.t
    return StageResult(
        series=(
            Series("Distance", "m", "Distance driven since start (integrated speed)", t, distance),
            Series("LapIndex", "1", "Lap number, 0 = the lap the car starts on", t, laps),
            Series(
                "TrackDistance",
                "m",
                "Position along the track from its start line (GPS)",
                t,
                on_track,
            ),
        )
    )


STAGE = Stage("localization", ("cleanup",), run, "lap index and distance along the track")
