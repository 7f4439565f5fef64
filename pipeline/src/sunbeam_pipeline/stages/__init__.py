"""The stage registry, in an order where every stage comes after the stages it depends on.

Dependencies (efficiency needs lap indices, so localization runs before it):

    ingress -> cleanup -> power -> energy
                       -> array
                       -> localization
                       (power, localization) -> efficiency
"""

from __future__ import annotations

from collections.abc import Iterable

from sunbeam_pipeline.errors import ConfigError
from sunbeam_pipeline.stages import array, cleanup, efficiency, energy, ingress, localization, power
from sunbeam_pipeline.stages.base import Stage, StageContext, StageResult

STAGES: tuple[Stage, ...] = (
    ingress.STAGE,
    cleanup.STAGE,
    power.STAGE,
    array.STAGE,
    energy.STAGE,
    localization.STAGE,
    efficiency.STAGE,
)
BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}


def resolve_stages(requested: Iterable[str] | None) -> list[Stage]:
    """The requested stages plus everything they depend on, in run order (all when None).

    A stage needs its inputs in memory, so asking for `energy` alone also runs (and rewrites)
    ingress, cleanup and power: their results are the same for the same ref and telemetry.
    """
    if requested is None:
        return list(STAGES)
    names = list(requested)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ConfigError(
            f"unknown stage(s) {', '.join(map(repr, unknown))} (stages: {', '.join(BY_NAME)})"
        )
    if not names:
        raise ConfigError(f"no stages requested (stages: {', '.join(BY_NAME)})")
    wanted: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending.extend(BY_NAME[name].depends_on)
    return [s for s in STAGES if s.name in wanted]


__all__ = ["BY_NAME", "STAGES", "Stage", "StageContext", "StageResult", "resolve_stages"]
