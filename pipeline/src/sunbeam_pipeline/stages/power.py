"""power: pack power and motor power, V x I on the pack bus."""

from __future__ import annotations

from sunbeam_pipeline.series import Series
from sunbeam_pipeline.stages.base import Stage, StageContext, StageResult


def run(ctx: StageContext) -> StageResult:
    telemetry = ctx.cleaned()
    voltage, pack_current, motor_current = telemetry.require(
        "pack_voltage", "pack_current", "motor_current"
    )
    return StageResult(
        series=(
            Series(
                "PackPower",
                "W",
                "Battery pack power, discharge > 0 (pack voltage x pack current)",
                telemetry.t,
                voltage * pack_current,
            ),
            Series(
                "MotorPower",
                "W",
                "Motor controller input power, regen < 0 (pack voltage x motor current)",
                telemetry.t,
                voltage * motor_current,
            ),
        )
    )


STAGE = Stage("power", ("cleanup",), run, "pack and motor power")
