"""array: total solar array power, the sum of the three MPPT string powers."""

from __future__ import annotations

import numpy as np

from sunbeam_pipeline.channels import ARRAY_STRINGS
from sunbeam_pipeline.series import Series
from sunbeam_pipeline.stages.base import Stage, StageContext, StageResult


def run(ctx: StageContext) -> StageResult:
    telemetry = ctx.cleaned()
    strings = telemetry.require(*ARRAY_STRINGS)
    total = np.sum(strings, axis=0)  # NaN if any string is missing: a partial sum would lie
    return StageResult(
        series=(
            Series(
                "ArrayPower", "W", "Solar array output, sum of MPPT strings", telemetry.t, total
            ),
        )
    )


STAGE = Stage("array", ("cleanup",), run, "array power")
