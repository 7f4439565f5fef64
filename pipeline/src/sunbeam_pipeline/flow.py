"""The Prefect flow `run-sunbeam`: every selected stage for every selected event.

Stages run per event in dependency order, each as its own task run named `<stage>[<event>]`.
A stage that fails is reported (its task run is Failed with the reason); the stages that need
its output are skipped and reported; every other stage still runs, and so do the other events.
The flow then ends Failed, naming what failed and what was skipped: a partial result set must not
look like a good nightly run, but one bad channel must not cost the results that did not need it.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The agent puts `src/` on PYTHONPATH; a bare `prefect` entrypoint load may not. Make sure the
# package this file belongs to is importable either way.
_SRC = str(Path(__file__).resolve().parents[1])
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.utilities.annotations import quote  # noqa: E402

from sunbeam_pipeline.config import EventConfig, Settings, load_settings  # noqa: E402
from sunbeam_pipeline.errors import ConfigError, StagesFailedError  # noqa: E402
from sunbeam_pipeline.provenance import Provenance, collect_provenance  # noqa: E402
from sunbeam_pipeline.sources import build_source  # noqa: E402
from sunbeam_pipeline.stages import BY_NAME, StageContext, StageResult, resolve_stages  # noqa: E402
from sunbeam_pipeline.store import ResultStore, SeriesKey, redact_uri  # noqa: E402
from sunbeam_pipeline.telemetry import TelemetrySource  # noqa: E402

COMPLETED, FAILED, SKIPPED = "completed", "failed", "skipped"


@dataclass(frozen=True)
class StageOutcome:
    event: str
    stage: str
    status: str  # completed | failed | skipped
    detail: str = ""
    series: int = 0

    def line(self) -> str:
        return f"{self.stage}[{self.event}]: {self.detail}"


# Stage inputs live in memory for the length of the flow run: no result persistence, no caching
# (hashing arrays for cache keys would cost more than recomputing).
@task(cache_policy=NO_CACHE, persist_result=False)
def execute_stage(
    stage_name: str, context: StageContext, store: ResultStore, provenance: Provenance
) -> StageResult:
    stage = BY_NAME[stage_name]
    logger = get_run_logger()
    context = dataclasses.replace(context, log=logger)
    result = stage.run(context)
    for series in result.series:
        key = SeriesKey(provenance.ref, context.event.name, stage.name, series.name)
        store.write(key, series, provenance)
    logger.info(
        "%s[%s]: stored %d series (%d points)",
        stage.name,
        context.event.name,
        len(result.series),
        sum(len(s) for s in result.series),
    )
    return result


def _run_event(
    event: EventConfig,
    stage_names: list[str],
    settings: Settings,
    source: TelemetrySource,
    store: ResultStore,
    provenance: Provenance,
) -> list[StageOutcome]:
    logger = get_run_logger()
    results: dict[str, StageResult] = {}
    outcomes: list[StageOutcome] = []
    for name in stage_names:
        stage = BY_NAME[name]
        blocked = [d for d in stage.depends_on if d not in results]
        if blocked:
            detail = f"skipped, needs {', '.join(blocked)}"
            logger.warning("%s[%s]: %s", name, event.name, detail)
            outcomes.append(StageOutcome(event.name, name, SKIPPED, detail))
            continue
        context = StageContext(event, settings, source, dict(results))
        state = execute_stage.with_options(name=name, task_run_name=f"{name}[{event.name}]")(
            # quote(): hand the objects over as they are, not walked for futures/copied.
            name,
            quote(context),
            quote(store),
            provenance,
            return_state=True,
        )
        if state.is_completed():
            result = state.result()
            results[name] = result
            outcomes.append(StageOutcome(event.name, name, COMPLETED, "ok", len(result.series)))
        else:
            exc = state.result(raise_on_failure=False)
            detail = (
                f"{type(exc).__name__}: {exc}"
                if isinstance(exc, BaseException)
                else (state.message or state.type.value)
            )
            logger.error("%s[%s] failed: %s", name, event.name, detail)
            outcomes.append(StageOutcome(event.name, name, FAILED, detail))
    return outcomes


@flow(name="run-sunbeam")
def run_sunbeam(events: list[str] | None = None, stages: list[str] | None = None) -> dict[str, Any]:
    """Run the Sunbeam pipeline.

    (Google-style Args: Prefect shows them as the parameters' descriptions in the dashboard.)

    Args:
        events: event names from sunbeam.toml (default: all configured events).
        stages: stage names to run (default: all); their upstream stages run too.
    """
    logger = get_run_logger()
    settings = load_settings()
    selected_events = (
        [settings.event(n) for n in events] if events is not None else list(settings.events)
    )
    if not selected_events:
        raise ConfigError(f"no events to run (configure [[events]] in {settings.config_path})")
    stage_names = [s.name for s in resolve_stages(stages)]
    source = build_source(settings, log=logger)
    provenance = collect_provenance()
    logger.info(
        "Sunbeam pipeline: ref %s at %s, env %s; %d event(s) x stages %s -> %s",
        provenance.ref,
        provenance.commit[:12],
        provenance.env_key,
        len(selected_events),
        ", ".join(stage_names),
        f"{redact_uri(settings.mongo.uri)}/{settings.mongo.database}",
    )

    store = ResultStore.connect(settings.mongo)
    try:
        store.ensure_indexes()  # also proves MongoDB answers before any stage runs
        outcomes: list[StageOutcome] = []
        for event in selected_events:
            outcomes += _run_event(event, stage_names, settings, source, store, provenance)
    finally:
        store.close()

    summary = {
        "ref": provenance.ref,
        "commit": provenance.commit,
        "flow_run_id": provenance.flow_run_id,
        "stages": {
            event.name: {o.stage: o.status for o in outcomes if o.event == event.name}
            for event in selected_events
        },
        "series_written": sum(o.series for o in outcomes),
    }
    failed = [o for o in outcomes if o.status == FAILED]
    skipped = [o for o in outcomes if o.status == SKIPPED]
    if failed:
        message = f"{len(failed)} stage run(s) failed: " + "; ".join(o.line() for o in failed)
        if skipped:
            message += f". Skipped: {', '.join(f'{o.stage}[{o.event}]' for o in skipped)}"
        raise StagesFailedError(message)
    logger.info(
        "All %d stage run(s) completed, %d series written", len(outcomes), summary["series_written"]
    )
    return summary
