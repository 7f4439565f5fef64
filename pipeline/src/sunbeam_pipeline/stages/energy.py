"""energy: integrated pack power and state of charge by coulomb counting.

SOC(t) = SOC0 - (integral of pack current) / capacity. SOC0 comes from the open-circuit voltage
at the start of the event (terminal voltage + I R, averaged over the first seconds) read off the
cell OCV curve, so no per-event parameter has to be typed in.
"""

from __future__ import annotations

import numpy as np

from sunbeam_pipeline.battery import Battery
from sunbeam_pipeline.errors import MissingChannelError
from sunbeam_pipeline.series import Series, cumulative_trapezoid, seconds_since_start
from sunbeam_pipeline.stages.base import Stage, StageContext, StageResult


def initial_soc(
    x: np.ndarray,
    voltage: np.ndarray,
    current: np.ndarray,
    battery: Battery,
    window_s: float,
    event: str,
) -> float:
    early = (x <= window_s) & np.isfinite(voltage) & np.isfinite(current)
    if not early.any():
        raise MissingChannelError(
            f"event {event}: no valid pack voltage and current in the first {window_s:g} s "
            "to estimate the initial state of charge"
        )
    ocv = voltage[early] + current[early] * battery.internal_resistance_ohm
    return float(battery.soc_from_ocv(np.median(ocv)))


def run(ctx: StageContext) -> StageResult:
    telemetry = ctx.cleaned()
    voltage, current = telemetry.require("pack_voltage", "pack_current")
    pack_power = ctx.upstream["power"].get("PackPower")
    battery = Battery(**vars(ctx.settings.battery))
    x = seconds_since_start(telemetry.t)

    energy_wh = cumulative_trapezoid(x, pack_power.v) / 3600.0
    charge_ah = cumulative_trapezoid(x, current) / 3600.0
    soc0 = initial_soc(
        x, voltage, current, battery, ctx.settings.energy.soc_estimate_s, ctx.event.name
    )
    soc = 100.0 * (soc0 - charge_ah / battery.capacity_ah)
    ctx.log.info(
        "%s: %.1f Wh drawn, SOC %.1f%% -> %.1f%%", ctx.event.name, energy_wh[-1], soc[0], soc[-1]
    )
    t = telemetry.t
    return StageResult(
        series=(
            Series(
                "IntegratedPackPower", "Wh", "Energy drawn from the pack since start", t, energy_wh
            ),
            Series(
                "IntegratedPackCurrent",
                "Ah",
                "Charge drawn from the pack since start",
                t,
                charge_ah,
            ),
            Series("SOC", "%", "State of charge by coulomb counting from the OCV estimate", t, soc),
        )
    )


STAGE = Stage("energy", ("cleanup", "power"), run, "integrated pack power, SOC")
