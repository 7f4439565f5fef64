"""efficiency: motor energy per metre (J/m) over 5-minute windows and per lap.

Each window's value is mean motor power / mean speed over its samples where both are known, i.e.
energy over distance. It is NaN when the mean speed or mean power is outside the configured valid
range (a stationary car or a regenerating stretch has no meaningful J/m), and for windows the data
only partly covers: a time window with less than half of it recorded, and the first and last lap
(the car starts and stops somewhere along them, so a few metres would pass for a lap).
"""

from __future__ import annotations

import numpy as np

from sunbeam_pipeline.config import EfficiencyConfig
from sunbeam_pipeline.series import Series, seconds_since_start
from sunbeam_pipeline.stages.base import Stage, StageContext, StageResult


def windowed_efficiency(
    group: np.ndarray, power: np.ndarray, speed: np.ndarray, limits: EfficiencyConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(group ids present, J/m per group) for integer group ids >= 0 (-1 = in no group).

    Completeness of the groups is the caller's business; this is only the range rule.
    """
    member = group >= 0
    ids = np.unique(group[member])
    if ids.size == 0:
        return ids, np.empty(0)
    ok = member & np.isfinite(power) & np.isfinite(speed)
    size = int(ids[-1]) + 1
    count = np.bincount(group[ok], minlength=size)[ids]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(group[ok], weights=power[ok], minlength=size)[ids] / count
        mean_v = np.bincount(group[ok], weights=speed[ok], minlength=size)[ids] / count
        valid = (
            (count > 0)
            & (mean_v >= limits.min_speed_mps)
            & (mean_v <= limits.max_speed_mps)
            & (mean_p >= limits.min_power_w)
            & (mean_p <= limits.max_power_w)
        )
        return ids, np.where(valid, mean_p / mean_v, np.nan)


def run(ctx: StageContext) -> StageResult:
    telemetry = ctx.cleaned()
    (speed,) = telemetry.require("speed")
    power = ctx.upstream["power"].get("MotorPower").v
    laps = ctx.upstream["localization"].get("LapIndex").v
    limits = ctx.settings.efficiency
    x = seconds_since_start(telemetry.t)
    t = telemetry.t

    windows = np.floor(x / limits.window_s).astype(np.int64)
    ids, per_window = windowed_efficiency(windows, power, speed, limits)
    covered = np.minimum(x[-1], (ids + 1) * limits.window_s) - ids * limits.window_s
    per_window[covered < limits.window_s / 2] = np.nan
    window_start = t[0] + (ids * limits.window_s * 1000).astype("timedelta64[ms]")

    lap_ids = np.where(np.isfinite(laps), laps, -1).astype(np.int64)
    laps_present, per_lap = windowed_efficiency(lap_ids, power, speed, limits)
    if per_lap.size:
        per_lap[[0, -1]] = np.nan  # partial laps: the event starts and ends mid-lap
    lap_start = t[[int(np.argmax(lap_ids == lap)) for lap in laps_present]]

    minutes = limits.window_s / 60.0
    return StageResult(
        series=(
            Series(
                "Efficiency5Minute",
                "J/m",
                f"Motor energy per metre over {minutes:g}-minute windows (window start)",
                window_start,
                per_window,
            ),
            Series(
                "EfficiencyLap",
                "J/m",
                "Motor energy per metre per lap (stamped at the lap's first sample)",
                lap_start,
                per_lap,
            ),
        )
    )


STAGE = Stage(
    "efficiency", ("cleanup", "power", "localization"), run, "J/m over 5-minute windows and laps"
)
