"""`sunbeam deploy`: register (or update) the pipeline deployment for a ref.

It calls `sunbeam_api.orchestration.deployments`, the same code the API's commission endpoint uses: the ref is
checked against the repository first (nothing is created for a ref that is not there), and a
sync-only run is queued so the agent prepares the ref's env and stores the flow's parameter
schema on the deployment before anyone's first run.
"""

from __future__ import annotations

import asyncio
import sys

from sunbeam_api.dependencies import prefect_client, validate_ref
from sunbeam_api.errors import BackendUnavailableError, BadInputError
from sunbeam_api.orchestration import deployments
from sunbeam_api.orchestration import runs as prefect_runs
from sunbeam_api.orchestration.remote_refs import require_remote_ref
from sunbeam_api.settings import get_settings
from sunbeam_contracts.naming import full_deployment_name
from sunbeam_stack.checkout import find_checkout

# git ls-remote on a remote repository may take a few seconds; a CLI user can wait that long.
REF_CHECK_TIMEOUT = 30.0


def _this_checkout() -> str | None:
    """This checkout's URL, as `sunbeam up` defaults to it."""
    root = find_checkout()
    return root.as_uri() if root else None


async def _checked_ref(repo: str, ref: str) -> str | None:
    """The ref's commit; BadInputError when the repository lacks it, None when it cannot tell.

    A repository this host cannot list (often: only the agent has the git token, as in Compose,
    where the API container runs `sunbeam deploy` on start) must not stop the registration:
    the agent checks the ref on every run and fails a missing one with a one-line message.
    """
    try:
        return await require_remote_ref(repo, ref, timeout=REF_CHECK_TIMEOUT)
    except BackendUnavailableError as exc:
        print(
            f"sunbeam deploy: warning: {exc.message}; registering without checking the ref",
            file=sys.stderr,
        )
        return None


def register(
    repo: str | None, ref: str, pool: str | None, project_dir: str, cron: str | None
) -> str:
    """Register the deployment; returns the line to print. SunbeamApiError on bad input."""
    settings = get_settings()
    repo = repo or settings.pipeline_repo or _this_checkout()
    if not repo:
        raise BadInputError(
            "no repository: pass --repo URL or set SUNBEAM_PIPELINE_REPO "
            "(or run it inside the pipeline's git checkout)"
        )
    ref = validate_ref(ref)
    if cron is not None:
        deployments.cron_schedule(cron)

    async def ensure() -> str:
        commit = await _checked_ref(repo, ref)
        async with prefect_client(settings) as client:
            deployment_id = await deployments.ensure_pipeline_deployment(
                client,
                repo_url=repo,
                ref=ref,
                work_pool=pool or settings.work_pool,
                project_dir=project_dir,
                cron=cron,
            )
            prewarm = await prefect_runs.create_commission_run(client, deployment_id, ref, commit)
        return (
            f"deployed {full_deployment_name(ref)} (ref {ref} at {(commit or '?')[:12]}, id "
            f"{deployment_id}); prewarm run {prewarm.name} queued (it stores the flow's parameters)"
        )

    return asyncio.run(ensure())
