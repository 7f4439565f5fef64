"""Runs: start a pipeline run on a ref (answers at once), list runs, one run, its logs."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response, status
from prefect.client.schemas.objects import FlowRun, StateType
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sunbeam_api.dependencies import AuthDep, Commit, PrefectDep, Ref
from sunbeam_api.errors import ConflictError, NotFoundError
from sunbeam_api.orchestration import runs as prefect_runs
from sunbeam_contracts import run_labels

router = APIRouter(prefix="/runs", tags=["runs"])

_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
MAX_PREFECT_PAGE = 200
DEFAULT_LOG_LINES = 1000  # an ordinary run's whole log (about 300 lines) in one answer
MAX_LOG_LINES = 10_000
NEXT_OFFSET = "X-Next-Offset"


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: Ref
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="flow parameters of run_sunbeam, e.g. events, stages"
    )
    commit: Commit | None = Field(
        default=None,
        description="run this commit (7-40 hex digits) instead of the ref's latest; results "
        "are filed under `ref`, the commit in their provenance",
    )

    @field_validator("parameters")
    @classmethod
    def _plain_parameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not _PARAM_NAME.match(key):
                raise ValueError(f"parameter name {key[:40]!r} is not a Python identifier")
        _reject_operators(value)
        return value


def _reject_operators(value: object, depth: int = 0) -> None:
    if depth > 20:
        raise ValueError("parameters are nested too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).startswith("$"):
                raise ValueError("keys starting with '$' are not allowed")
            _reject_operators(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _reject_operators(item, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN or Infinity; Python's parser accepts them, Prefect would store garbage.
        raise ValueError("numbers must be finite (NaN and Infinity are not JSON)")


class RunCreated(BaseModel):
    id: UUID
    name: str
    ref: str
    state: str | None
    commit: str | None = Field(default=None, description="the commit the run is pinned to")


class RerunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latest: bool = Field(
        default=False,
        description="false (default): the same commit, in an env from the same lock; true: the "
        "ref's latest commit, with the same parameters",
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunCreated,
    dependencies=[AuthDep],
    summary="Start a pipeline run on a ref (the agent syncs that ref first)",
)
async def create_run(body: RunRequest, client: PrefectDep) -> RunCreated:
    run = await prefect_runs.create_pipeline_run(client, body.ref, body.parameters, body.commit)
    return _created(run, body.ref)


def _created(run: FlowRun, ref: str) -> RunCreated:
    return RunCreated(
        id=run.id,
        name=run.name,
        ref=ref,
        state=run.state_type.value if run.state_type else None,
        commit=(run.labels or {}).get(run_labels.COMMIT),
    )


@router.post(
    "/{run_id}/rerun",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunCreated,
    dependencies=[AuthDep],
    summary="Run a run again: the same commit in an env from the same lock (latest=true: the "
    "ref's latest commit)",
)
async def rerun(
    client: PrefectDep, run_id: Annotated[UUID, Path()], body: RerunRequest | None = None
) -> RunCreated:
    original = await prefect_runs.read_flow_run(client, run_id)
    if original is None:
        raise NotFoundError(f"no pipeline run {run_id}")
    try:
        run = await prefect_runs.create_rerun(client, original, latest=bool(body and body.latest))
    except prefect_runs.RerunError as exc:
        raise ConflictError(str(exc)) from None
    return _created(run, prefect_runs.summarize(run).ref or "")


@router.get(
    "",
    response_model=list[prefect_runs.RunSummary],
    summary="List pipeline runs, latest expected start first",
)
async def list_runs(
    client: PrefectDep,
    ref: Annotated[Ref | None, Query()] = None,
    state: Annotated[StateType | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PREFECT_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    include_future: Annotated[
        bool, Query(description="also list scheduled runs more than 5 minutes ahead")
    ] = False,
) -> list[prefect_runs.RunSummary]:
    return await prefect_runs.list_runs(
        client, ref=ref, state=state, limit=limit, offset=offset, include_future=include_future
    )


@router.get("/{run_id}", response_model=prefect_runs.RunSummary, summary="One run")
async def read_run(client: PrefectDep, run_id: Annotated[UUID, Path()]) -> prefect_runs.RunSummary:
    run = await prefect_runs.read_run(client, run_id)
    if run is None:
        raise NotFoundError(f"no pipeline run {run_id}")
    return run


@router.get(
    "/{run_id}/logs",
    response_model=list[prefect_runs.LogLine],
    summary="A run's logs, oldest first; X-Next-Offset names the next page when there is one",
    responses={200: {"headers": {NEXT_OFFSET: {"description": "offset of the next page"}}}},
)
async def read_logs(
    client: PrefectDep,
    response: Response,
    run_id: Annotated[UUID, Path()],
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_LINES)] = DEFAULT_LOG_LINES,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[prefect_runs.LogLine]:
    if await prefect_runs.read_run(client, run_id) is None:
        raise NotFoundError(f"no pipeline run {run_id}")
    # One line more than asked tells whether another page follows, without a count query.
    lines = await prefect_runs.read_run_logs(client, run_id, limit=limit + 1, offset=offset)
    if len(lines) > limit:
        response.headers[NEXT_OFFSET] = str(offset + limit)
    return lines[:limit]
