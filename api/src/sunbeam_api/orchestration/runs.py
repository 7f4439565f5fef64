"""Flow runs of the pipeline: create them on demand, read what the agent recorded (prewarms: prewarm.py).

Prefect is the source of truth for runs. The agent writes its findings as flow run labels
(docs/contracts.md); every run the API creates is tagged `sunbeam-ref:<REF>` so runs can be
filtered by ref on the server.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterId,
    FlowRunFilterStateType,
    FlowRunFilterTags,
    LogFilter,
    LogFilterFlowRunId,
    Operator,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort, LogSort
from pydantic import BaseModel, Field

from sunbeam_api.orchestration.deployments import main_deployment_id
from sunbeam_contracts import run_labels
from sunbeam_contracts.naming import FLOW_NAME, MAIN_REF, ref_slug
from sunbeam_contracts.tags import (
    COMMIT_TAG_PREFIX,
    PREWARM_TAG,
    REF_TAG_PREFIX,
    commit_tag,
    prewarm_idempotency_key,
    ref_tag,
    tagged_refs,
)

FUTURE_MARGIN = timedelta(minutes=5)
PREFECT_PAGE = 200  # the most rows Prefect's server returns per filter request


class RunSummary(BaseModel):
    id: UUID
    name: str
    state: str | None
    state_name: str | None
    state_message: str | None  # why a run failed, crashed or was cancelled (Prefect's message)
    phase: str | None = Field(
        description="queued, syncing (the agent fetches the ref and checks its env), building "
        "(its env is being built), starting (synced, the flow starting), running, finished; "
        "or paused, cancelling"
    )
    ref: str | None
    commit: str | None = Field(description="the commit the run ran, or will run (a rerun)")
    env_key: str | None = Field(description="the env the run used, once the agent knows it")
    rerun_of: UUID | None = Field(description="the run this one repeats exactly, if any")
    cache_hit: bool | None
    built: bool | None
    healed: bool | None
    sync_seconds: float | None
    timings: dict[str, float]
    prewarm: bool
    tags: list[str]
    parameters: dict[str, Any]
    deployment_id: UUID | None
    created: datetime | None
    start_time: datetime | None
    end_time: datetime | None


class LogLine(BaseModel):
    timestamp: datetime
    level: int
    name: str
    message: str


def _bool(value: object) -> bool | None:
    if value is None:
        return None
    return {run_labels.TRUE: True, run_labels.FALSE: False}.get(str(value).lower())


def _float(value: object) -> float | None:
    try:
        return float(value) if value is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _timings(value: object) -> dict[str, float]:
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {str(k): f for k, v in parsed.items() if (f := _float(v)) is not None}


def _ref_tags_filter(ref: str) -> FlowRunFilterTags:
    if ref == MAIN_REF:
        # run-sunbeam/main carries no ref tag (its tags would land on every on-demand run made
        # from it), so its scheduled runs are the pipeline's only untagged runs.
        # (`operator` is a field of Prefect's filter base class that its stubs do not show.)
        return FlowRunFilterTags(operator=Operator.or_, all_=[ref_tag(ref)], is_null_=True)  # type: ignore[call-arg]
    return FlowRunFilterTags(all_=[ref_tag(ref)])


def _run_ref(run: FlowRun, labels: dict[str, Any]) -> str | None:
    if isinstance(labels.get(run_labels.REF), str):
        return labels[run_labels.REF]
    ref = (run.job_variables or {}).get("ref")
    if isinstance(ref, str):
        return ref
    tagged = tagged_refs(list(run.tags))
    if not run.tags and run.deployment_id is not None:
        return MAIN_REF  # a scheduled run of run-sunbeam/main (see _ref_tags_filter)
    return tagged[0] if len(tagged) == 1 else None


_PHASES = {
    StateType.SCHEDULED: "queued",
    StateType.RUNNING: "running",
    StateType.PAUSED: "paused",
    StateType.CANCELLING: "cancelling",
}
_SYNC_PHASES = {run_labels.BUILDING: "building", run_labels.SYNCED: "starting"}


def run_phase(run: FlowRun, labels: dict[str, Any]) -> str | None:
    """Where a run is, beyond Prefect's state: a Pending run is the agent's sync (docs/contracts.md)."""
    if run.state_type is None:
        return None
    if run.state_type is StateType.PENDING:
        return _SYNC_PHASES.get(str(labels.get(run_labels.PHASE)), "syncing")
    if run.state is not None and run.state.is_final():
        return "finished"
    return _PHASES.get(run.state_type, run.state_type.value.lower())


def _uuid(value: object) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


def summarize(run: FlowRun) -> RunSummary:
    labels = dict(run.labels or {})
    return RunSummary(
        id=run.id,
        name=run.name,
        state=run.state_type.value if run.state_type else None,
        state_name=run.state_name,
        state_message=(run.state.message or None) if run.state else None,
        phase=run_phase(run, labels),
        ref=_run_ref(run, labels),
        commit=labels.get(run_labels.COMMIT),
        env_key=labels.get(run_labels.ENV_KEY),
        rerun_of=_uuid(labels.get(run_labels.RERUN_OF)),
        cache_hit=_bool(labels.get(run_labels.CACHE_HIT)),
        built=_bool(labels.get(run_labels.BUILT)),
        healed=_bool(labels.get(run_labels.HEALED)),
        sync_seconds=_float(labels.get(run_labels.SYNC_SECONDS)),
        timings=_timings(labels.get(run_labels.TIMINGS)),
        prewarm=PREWARM_TAG in run.tags,
        tags=list(run.tags),
        parameters=run.parameters or {},
        deployment_id=run.deployment_id,
        created=run.created,
        start_time=run.start_time,
        end_time=run.end_time,
    )


async def create_pipeline_run(
    client: PrefectClient, ref: str, parameters: dict[str, Any], commit: str | None = None
) -> FlowRun:
    """A flow run of run-sunbeam/main on `ref`; the agent syncs that ref's env before running.

    With `commit`, the run runs that commit (filed under `ref`, the commit in its provenance):
    the label and tag pin it (docs/contracts.md)."""
    deployment_id = await main_deployment_id(client)
    return await client.create_flow_run_from_deployment(
        deployment_id,
        parameters=parameters,
        job_variables={"ref": ref},
        tags=[ref_tag(ref), *([commit_tag(commit)] if commit else [])],
        labels={run_labels.COMMIT: commit} if commit else None,
    )


class RerunError(ValueError):
    """The run cannot be repeated exactly; the message says why and what to do instead."""


async def create_rerun(client: PrefectClient, original: FlowRun, *, latest: bool) -> FlowRun:
    """A new run of `original`'s deployment with its parameters and job variables, on the commit
    it ran (pinned: same code, an env from the same lock), or on its ref's latest commit."""
    labels = dict(original.labels or {})
    ref = _run_ref(original, labels)
    commit = labels.get(run_labels.COMMIT)
    if ref is None or original.deployment_id is None:
        raise RerunError(f"run {original.id} was not made from a deployment on a ref")
    if not latest and not isinstance(commit, str):
        raise RerunError(
            f"run {original.id} never resolved a commit (its sync failed before that): "
            f"rerun it with latest=true, or start a new run of {ref}"
        )
    kept = [t for t in original.tags if not t.startswith((REF_TAG_PREFIX, COMMIT_TAG_PREFIX))]
    pinned = {} if latest else {run_labels.COMMIT: str(commit)}
    return await client.create_flow_run_from_deployment(
        original.deployment_id,
        parameters=original.parameters,
        job_variables=dict(original.job_variables or {}),
        tags=[*kept, ref_tag(ref), *([] if latest else [commit_tag(str(commit))])],
        labels={run_labels.RERUN_OF: str(original.id), **pinned},
    )


async def create_commission_run(
    client: PrefectClient, deployment_id: UUID, ref: str, commit: str | None
) -> FlowRun:
    """A sync-only run of a just-registered deployment, on the deployment's own ref.

    The agent prepares the ref's env and, because the run's ref is the deployment's, stores the
    flow's parameter schema on the deployment. Keyed by deployment and commit (the ref when the
    commit could not be read): registering the same commit again (every `sunbeam up`, every API
    container start) queues nothing new.
    """
    version = commit or ref
    return await client.create_flow_run_from_deployment(
        deployment_id,
        job_variables={"sync_only": True},
        tags=[PREWARM_TAG, ref_tag(ref)],
        idempotency_key=f"{prewarm_idempotency_key(version)}:{deployment_id}",
        name=f"prewarm-{commit[:12] if commit else ref_slug(ref)}",
    )


async def list_runs(
    client: PrefectClient,
    *,
    ref: str | None,
    state: StateType | None,
    limit: int,
    offset: int,
    include_future: bool = False,
) -> list[RunSummary]:
    # Prefect's scheduler keeps up to ~100 future nightly runs; unless asked for, they would bury
    # the runs people are looking for.
    horizon = None if include_future else datetime.now(UTC) + FUTURE_MARGIN
    run_filter = FlowRunFilter(
        tags=_ref_tags_filter(ref) if ref else None,
        expected_start_time=FlowRunFilterExpectedStartTime(before_=horizon) if horizon else None,
        state={"type": FlowRunFilterStateType(any_=[state])} if state else None,
    )
    runs = await client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
        flow_run_filter=run_filter,
        sort=FlowRunSort.EXPECTED_START_TIME_DESC,
        limit=limit,
        offset=offset,
    )
    return [summarize(r) for r in runs]


async def read_flow_run(client: PrefectClient, run_id: UUID) -> FlowRun | None:
    """The pipeline's flow run `run_id` (None: no such run, or not of the pipeline's flow)."""
    runs = await client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])),
        limit=1,
    )
    return runs[0] if runs else None


async def read_run(client: PrefectClient, run_id: UUID) -> RunSummary | None:
    run = await read_flow_run(client, run_id)
    return summarize(run) if run else None


async def read_run_logs(
    client: PrefectClient, run_id: UUID, *, limit: int, offset: int
) -> list[LogLine]:
    """Up to `limit` log lines from `offset` on, oldest first.

    Prefect answers at most PREFECT_PAGE lines per request, so longer reads are paged here:
    a caller asks once and gets the whole log of an ordinary run.
    """
    lines: list[LogLine] = []
    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
    while len(lines) < limit:
        want = min(PREFECT_PAGE, limit - len(lines))
        page = await client.read_logs(
            log_filter, limit=want, offset=offset + len(lines), sort=LogSort.TIMESTAMP_ASC
        )
        lines += [
            LogLine(timestamp=log.timestamp, level=log.level, name=log.name, message=log.message)
            for log in page
        ]
        if len(page) < want:
            break
    return lines
