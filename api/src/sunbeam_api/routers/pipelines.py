"""Pipelines per ref: commission (a Prefect deployment), list, decommission (results kept)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sunbeam_api.dependencies import AuthDep, DbDep, PrefectDep, Ref, SettingsDep
from sunbeam_api.errors import BadInputError, DisabledError, NotFoundError
from sunbeam_api.orchestration import deployments
from sunbeam_api.orchestration import runs as prefect_runs
from sunbeam_api.orchestration.remote_refs import require_remote_ref
from sunbeam_api.results import store

router = APIRouter(prefix="/pipelines", tags=["pipelines"])


class CommissionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"ref": "main", "cron": "0 2 * * *"}]}
    )

    ref: Ref
    cron: str | None = Field(
        None, max_length=100, description="cron schedule (UTC); main defaults to nightly"
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                deployments.cron_schedule(value)
            except BadInputError as exc:
                raise ValueError(exc.message) from None
        return value


class Decommissioned(BaseModel):
    ref: str
    deployment_deleted: bool
    purged: dict[str, int] | None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=deployments.PipelineDeployment,
    dependencies=[AuthDep],
    summary="Commission the pipeline for a ref (idempotent)",
)
async def commission(
    body: CommissionRequest, client: PrefectDep, settings: SettingsDep
) -> deployments.PipelineDeployment:
    if not settings.pipeline_repo:
        raise DisabledError(
            "commissioning is disabled: set SUNBEAM_PIPELINE_REPO to the pipeline repository URL"
        )
    commit = await require_remote_ref(
        settings.pipeline_repo, body.ref, timeout=settings.backend_timeout_s * 3
    )
    deployment_id = await deployments.ensure_pipeline_deployment(
        client,
        repo_url=settings.pipeline_repo,
        ref=body.ref,
        work_pool=settings.work_pool,
        cron=body.cron,
    )
    # The agent stores the flow's parameter schema on the deployment during this prewarm, so the
    # dashboard shows the parameters and Prefect checks them before anyone's first run.
    await prefect_runs.create_commission_run(client, deployment_id, body.ref, commit)
    found = await deployments.read_pipeline_deployment(client, body.ref)
    if found is None:  # deleted between the two calls
        raise NotFoundError(f"the deployment for {body.ref!r} vanished right after creation")
    return found


@router.get("", response_model=list[deployments.PipelineDeployment], summary="List pipelines")
async def list_pipelines(client: PrefectDep) -> list[deployments.PipelineDeployment]:
    return await deployments.list_pipeline_deployments(client)


@router.delete(
    "/{ref:path}",
    response_model=Decommissioned,
    dependencies=[AuthDep],
    summary="Decommission a ref's pipeline; results are kept unless purge=true",
)
async def decommission(
    ref: Annotated[Ref, Path()],
    client: PrefectDep,
    db: DbDep,
    purge: Annotated[bool, Query(description="also delete the ref's results")] = False,
) -> Decommissioned:
    deleted = await deployments.delete_pipeline_deployment(client, ref)
    if not deleted and not purge:
        raise NotFoundError(f"no pipeline is commissioned for ref {ref!r}")
    purged = await store.purge_ref(db, ref) if purge else None
    return Decommissioned(ref=ref, deployment_deleted=deleted, purged=purged)
