"""`sunbeam deploy`: register (or update) the pipeline deployment for a ref.

It calls `sunbeam_api.deployments`, the same code the API's commission endpoint uses.
"""

from __future__ import annotations

import asyncio

from sunbeam_api import deployments
from sunbeam_api.dependencies import prefect_client
from sunbeam_api.errors import BadInputError
from sunbeam_api.refs import validate_ref
from sunbeam_api.settings import get_settings
from sunbeam_contracts.naming import full_deployment_name


def register(
    repo: str | None, ref: str, pool: str | None, project_dir: str, cron: str | None
) -> str:
    """Register the deployment; returns the line to print. SunbeamApiError on bad input."""
    settings = get_settings()
    repo = repo or settings.pipeline_repo
    if not repo:
        raise BadInputError("no repository: pass --repo URL or set SUNBEAM_PIPELINE_REPO")
    ref = validate_ref(ref)
    if cron is not None:
        deployments.cron_schedule(cron)

    async def register() -> str:
        async with prefect_client(settings) as client:
            deployment_id = await deployments.ensure_pipeline_deployment(
                client,
                repo_url=repo,
                ref=ref,
                work_pool=pool or settings.work_pool,
                project_dir=project_dir,
                cron=cron,
            )
        return str(deployment_id)

    deployment_id = asyncio.run(register())
    return f"deployed {full_deployment_name(ref)} (ref {ref}, id {deployment_id})"
