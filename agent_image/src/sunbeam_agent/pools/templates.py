"""Work pools whose base job template runs `sunbeam-run`, for Prefect's stock worker types.

The templates (pool_templates/*.json) are the stock worker's own default template with
`command` = `sunbeam-run` and Sunbeam's job variables (`repo_url`, `ref`, `project_dir`,
`cache_dir`, `sync_only`) added, so one deployment runs unchanged on any of them. The docker
template runs the agent image on the host network with the cache on a named volume; the
kubernetes one mounts a node-local cache folder and runs as the image's non-root user.
"""

from __future__ import annotations

import copy
import json
from enum import StrEnum
from importlib import resources
from typing import Any

from sunbeam_agent.errors import AgentError


class PoolType(StrEnum):
    PROCESS = "process"
    DOCKER = "docker"
    KUBERNETES = "kubernetes"


class PoolError(AgentError):
    """The pool cannot be created or updated; the message says why."""


def load_template(pool_type: PoolType) -> dict[str, Any]:
    text = resources.files("sunbeam_agent.pools").joinpath(f"pool_templates/{pool_type.value}.json")
    return json.loads(text.read_text(encoding="utf-8"))


def template_with(pool_type: PoolType, **defaults: Any) -> dict[str, Any]:
    """The template with some variables' defaults replaced (None leaves a default alone)."""
    template = copy.deepcopy(load_template(pool_type))
    properties = template["variables"]["properties"]
    for name, value in defaults.items():
        if value is None:
            continue
        if name not in properties:
            known = ", ".join(sorted(properties))
            raise PoolError(f"the {pool_type.value} template has no variable {name!r} ({known})")
        properties[name]["default"] = value
    return template


async def read_or_create_pool(
    client: Any, name: str, pool_type: str, template: dict[str, Any]
) -> tuple[str, Any]:
    """Create the pool unless it exists: ("created", None), ("raced", None) when another process
    created it meanwhile, or ("exists", the pool as the server has it)."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    try:
        return "exists", await client.read_work_pool(name)
    except ObjectNotFound:
        pass
    try:
        await client.create_work_pool(
            WorkPoolCreate(name=name, type=pool_type, base_job_template=template)
        )
    except ObjectAlreadyExists:
        return "raced", None
    return "created", None


async def create_or_update_pool(name: str, pool_type: PoolType, template: dict[str, Any]) -> str:
    """Create the pool, or replace its base job template; returns "created" or "updated"."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate

    async with get_client() as client:
        done, pool = await read_or_create_pool(client, name, pool_type.value, template)
        if done == "created":
            return "created"
        pool = pool or await client.read_work_pool(name)
        if pool.type != pool_type.value:
            raise PoolError(
                f"work pool {name!r} exists with type {pool.type!r}, not {pool_type.value!r}; "
                "pick another name or delete it with `prefect work-pool delete`"
            )
        await client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))
        return "updated"
