"""POST /prewarm: build a ref's environment on every live host before anyone runs it.

The push webhook's prewarm (orchestration/prewarm.py) for places without one: `sunbeam up`, a
local branch, a team without GitHub. The ref is resolved to its commit in the pipeline
repository first, so prewarming the same commit again (a second call, a git hook firing twice)
reuses its runs, and a moved branch gets new ones.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict

from sunbeam_api.dependencies import AuthDep, PrefectDep, Ref, SettingsDep
from sunbeam_api.errors import DisabledError
from sunbeam_api.orchestration import prewarm
from sunbeam_api.orchestration.remote_refs import require_remote_ref

router = APIRouter(tags=["runs"])


class PrewarmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"ref": "feature"}]})

    ref: Ref


class PrewarmAnswer(BaseModel):
    ref: str
    commit: str
    runs: list[UUID]
    # The hosts prewarmed, in the order of `runs`; empty when one run went to the shared queue.
    hosts: list[str]
    note: str | None = None


@router.post(
    "/prewarm",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PrewarmAnswer,
    dependencies=[AuthDep],
    summary="Prewarm a ref: build its commit's environment on every live host (sync-only runs)",
)
async def prewarm_ref(
    body: PrewarmRequest, client: PrefectDep, settings: SettingsDep
) -> PrewarmAnswer:
    if not settings.pipeline_repo:
        raise DisabledError(
            "prewarming is disabled: set SUNBEAM_PIPELINE_REPO to the pipeline repository URL"
        )
    commit = await require_remote_ref(
        settings.pipeline_repo, body.ref, timeout=settings.backend_timeout_s * 3
    )
    prewarms = await prewarm.create_prewarm_runs(client, commit, body.ref)
    return PrewarmAnswer(
        ref=body.ref,
        commit=commit,
        runs=[r.id for r in prewarms.runs],
        hosts=prewarms.hosts,
        note=prewarms.note,
    )
