"""Refs: "has my push landed?": every branch, its head, its env on each host, its last run."""

from __future__ import annotations

from fastapi import APIRouter

from sunbeam_api.dependencies import PrefectDep, SettingsDep
from sunbeam_api.orchestration import ref_envs

router = APIRouter(prefix="/refs", tags=["refs"])


@router.get(
    "",
    response_model=list[ref_envs.RefEnvs],
    summary="Every branch of the pipeline repository, the one with the newest run first: its "
    "head commit, its env on each live host (queued, syncing, building, ready, failed, not "
    "built), the env key and its last run",
)
async def list_refs(client: PrefectDep, settings: SettingsDep) -> list[ref_envs.RefEnvs]:
    return await ref_envs.ref_envs(
        client,
        ref_envs.require_repo(settings.pipeline_repo),
        settings.work_pool,
        settings.backend_timeout_s * 3,
    )
