"""Pipeline deployments on Prefect: create, list and delete them with the Prefect client only.

Naming (docs/contracts.md): flow `run-sunbeam`; `main` gets deployment `run-sunbeam/main` (nightly
by default), any other ref `run-sunbeam/ref-<slug>` tagged `sunbeam-ref:<REF>`. The pipeline
itself is never imported: the agent checks out the ref and finds the entrypoint there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.responses import DeploymentResponse
from prefect.client.schemas.schedules import CronSchedule
from prefect.exceptions import ObjectNotFound
from pydantic import BaseModel

from sunbeam_api.errors import BadInputError, ConflictError
from sunbeam_contracts.naming import (
    ENTRYPOINT,
    FLOW_NAME,
    MAIN_DEFAULT_CRON,
    MAIN_DEPLOYMENT,
    MAIN_REF,
    deployment_name,
)
from sunbeam_contracts.parameter_schemas import strict_schema
from sunbeam_contracts.tags import ref_tag, tagged_refs

CRON_TIMEZONE = "UTC"
_PAGE = 200


class PipelineDeployment(BaseModel):
    """One commissioned pipeline: a ref and the Prefect deployment that runs it."""

    ref: str
    deployment: str  # "run-sunbeam/<name>"
    deployment_id: UUID
    cron: str | None
    paused: bool
    work_pool: str | None
    repo_url: str | None
    project_dir: str | None
    created: datetime | None
    updated: datetime | None


def cron_schedule(cron: str) -> CronSchedule:
    try:
        return CronSchedule(cron=cron, timezone=CRON_TIMEZONE)
    except ValueError as exc:
        raise BadInputError(f"invalid cron expression {cron[:80]!r}") from exc


async def _read_by_name(client: PrefectClient, name: str) -> DeploymentResponse | None:
    try:
        return await client.read_deployment_by_name(f"{FLOW_NAME}/{name}")
    except ObjectNotFound:
        return None


def _deployed_ref(deployment: DeploymentResponse) -> str | None:
    ref = (deployment.job_variables or {}).get("ref")
    if isinstance(ref, str):
        return ref
    tagged = tagged_refs(list(deployment.tags))
    return tagged[0] if tagged else None


async def _check_pool(client: PrefectClient, work_pool: str) -> None:
    try:
        await client.read_work_pool(work_pool)
    except ObjectNotFound:
        raise ConflictError(
            f"work pool {work_pool!r} does not exist yet: start the agent (sunbeam-agent creates "
            "it) or set SUNBEAM_WORK_POOL to an existing pool"
        ) from None


async def ensure_pipeline_deployment(
    client: PrefectClient,
    *,
    repo_url: str,
    ref: str,
    work_pool: str,
    project_dir: str = "pipeline",
    cron: str | None = None,
    parameter_schema: dict[str, Any] | None = None,
) -> UUID:
    """Create or update the deployment for `ref` (idempotent: Prefect upserts by name).

    Without `parameter_schema`, a schema the deployment already has (the agent stores the flow's,
    docs/contracts.md) is kept: re-registering must not switch parameter validation off.
    """
    name = deployment_name(ref)
    existing = await _read_by_name(client, name)
    if existing is not None and _deployed_ref(existing) not in (None, ref):
        # Two refs can share a slug (`feature/x`, `feature-x`); never let one replace the other.
        raise ConflictError(
            f"deployment {FLOW_NAME}/{name} already runs ref {_deployed_ref(existing)!r}; "
            f"decommission it before commissioning {ref!r}"
        )
    if cron is None and ref == MAIN_REF:
        cron = MAIN_DEFAULT_CRON
    schedules = (
        [DeploymentScheduleCreate(schedule=cron_schedule(cron), active=True)] if cron else []
    )
    await _check_pool(client, work_pool)
    flow_id = await client.create_flow_from_name(FLOW_NAME)
    # Only per-ref deployments carry the ref tag: Prefect unions deployment tags into every run,
    # and on-demand runs of other refs are created from run-sunbeam/main.
    tags = [] if ref == MAIN_REF else [ref_tag(ref)]
    schema = _schema_to_store(existing, parameter_schema)
    return await client.create_deployment(
        flow_id=flow_id,
        name=name,
        entrypoint=ENTRYPOINT,
        work_pool_name=work_pool,
        job_variables={"repo_url": repo_url, "ref": ref, "project_dir": project_dir},
        schedules=schedules,
        tags=tags,
        description=f"Sunbeam pipeline on ref {ref}",
        # With the flow's schema Prefect validates parameters when a run is created (422 for a
        # typo) and the UI shows the fields; without one, nothing is enforced.
        parameter_openapi_schema=schema,
        enforce_parameter_schema=schema is not None,
    )


def _schema_to_store(
    existing: DeploymentResponse | None, given: dict[str, Any] | None
) -> dict[str, Any] | None:
    if given:
        return strict_schema(given)
    if existing is None or not existing.enforce_parameter_schema:
        return None
    return dict(existing.parameter_openapi_schema or {}) or None


def _summary(deployment: DeploymentResponse, ref: str) -> PipelineDeployment:
    crons = [s.schedule.cron for s in deployment.schedules if isinstance(s.schedule, CronSchedule)]
    job_vars = deployment.job_variables or {}
    return PipelineDeployment(
        ref=ref,
        deployment=f"{FLOW_NAME}/{deployment.name}",
        deployment_id=deployment.id,
        cron=crons[0] if crons else None,
        paused=bool(deployment.paused),
        work_pool=deployment.work_pool_name,
        repo_url=job_vars.get("repo_url"),
        project_dir=job_vars.get("project_dir"),
        created=deployment.created,
        updated=deployment.updated,
    )


async def list_pipeline_deployments(client: PrefectClient) -> list[PipelineDeployment]:
    """Every deployment of the pipeline flow whose ref we can tell, sorted by ref."""
    flow_filter = FlowFilter(name=FlowFilterName(any_=[FLOW_NAME]))
    found: list[PipelineDeployment] = []
    offset = 0
    while True:
        page = await client.read_deployments(flow_filter=flow_filter, limit=_PAGE, offset=offset)
        for deployment in page:
            ref = _deployed_ref(deployment)
            if ref is not None:
                found.append(_summary(deployment, ref))
        if len(page) < _PAGE:
            break
        offset += _PAGE
    return sorted(found, key=lambda d: d.ref)


async def read_pipeline_deployment(client: PrefectClient, ref: str) -> PipelineDeployment | None:
    deployment = await _read_by_name(client, deployment_name(ref))
    if deployment is None or _deployed_ref(deployment) not in (None, ref):
        return None
    return _summary(deployment, ref)


async def delete_pipeline_deployment(client: PrefectClient, ref: str) -> bool:
    """Delete the deployment for `ref`; False when there is none (results are not touched)."""
    found = await read_pipeline_deployment(client, ref)
    if found is None:
        return False
    try:
        await client.delete_deployment(found.deployment_id)
    except ObjectNotFound:
        return False
    return True


async def main_deployment(client: PrefectClient) -> DeploymentResponse:
    """run-sunbeam/main, which on-demand runs and prewarms are created from."""
    deployment = await _read_by_name(client, MAIN_DEPLOYMENT)
    if deployment is None:
        raise ConflictError(
            f"deployment {FLOW_NAME}/{MAIN_DEPLOYMENT} does not exist: run `sunbeam deploy` or "
            'POST /pipelines {"ref": "main"} first'
        )
    return deployment


async def main_deployment_id(client: PrefectClient) -> UUID:
    return (await main_deployment(client)).id
