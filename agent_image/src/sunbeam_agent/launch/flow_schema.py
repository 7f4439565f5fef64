"""The deployment's parameter schema, computed from the flow in the ref's own env.

Neither the API nor the agent can import the pipeline (its dependencies live only in the ref's
env), so after the sync the launcher asks the env's interpreter, in the checkout, for the flow's
schema (Prefect's `parameter_schema`, as `flow.to_deployment()` computes it) and stores it on the
deployment, strict: Prefect then shows the parameters in the dashboard and refuses a typo'd
name when a run is created. Only for a deployment that runs this run's ref (a per-ref
deployment, or run-sunbeam/main on main), once per commit (the schema records its commit), and
never at the cost of the run: any problem is one warning line in the run's log.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from sunbeam_agent.errors import AgentError
from sunbeam_agent.launch.prefect_rest import PrefectAPIError, PrefectREST
from sunbeam_agent.launch.run_config import RunConfig
from sunbeam_agent.launch.settings import SCHEMA_TIMEOUT
from sunbeam_contracts.parameter_schemas import parameter_names, schema_commit, strict_schema

if TYPE_CHECKING:
    import logging

    from sunbeam_sync import PrepareResult

_PROGRAM = (
    resources.files("sunbeam_agent.launch").joinpath("_schema_main.py").read_text(encoding="utf-8")
)


class FlowSchemaError(AgentError):
    """The flow's schema could not be computed; the message says why."""


def runs_deployment_ref(config: RunConfig) -> bool:
    """Does this run run what its deployment is for (same ref, repository and folder)?

    Runs of other refs on run-sunbeam/main must not replace main's schema with their own.
    """
    own = config.deployment_variables
    if not config.deployment_id or own.get("ref") != config.ref:
        return False
    return all(own.get(k) in (None, getattr(config, k)) for k in ("repo_url", "project_dir"))


def needs_schema(config: RunConfig, commit: str) -> bool:
    """The deployment runs this ref and does not hold this commit's schema yet."""
    return runs_deployment_ref(config) and schema_commit(config.deployment_schema) != commit


def compute_schema(
    python: str, entrypoint: str, cwd: str, env: Mapping[str, str], timeout: float = SCHEMA_TIMEOUT
) -> dict[str, Any]:
    """The flow's parameter schema, from a short subprocess of the env's interpreter."""
    try:
        done = subprocess.run(
            [python, "-c", _PROGRAM, entrypoint],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise FlowSchemaError(f"loading the flow took longer than {timeout:g} s") from None
    except OSError as exc:
        raise FlowSchemaError(f"could not start {python}: {exc}") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        raise FlowSchemaError(f"loading {entrypoint} failed: {(lines or ['no output'])[-1][:300]}")
    try:
        schema = json.loads(done.stdout)
    except ValueError:
        raise FlowSchemaError("the schema program printed no JSON") from None
    if not isinstance(schema, dict):
        raise FlowSchemaError("the schema program printed no JSON object")
    return schema


def refresh_schema(
    api: PrefectREST,
    config: RunConfig,
    result: PrepareResult,
    entrypoint: str,
    env: Mapping[str, str],
    logger: logging.Logger,
    timeout: float = SCHEMA_TIMEOUT,
) -> None:
    """Store this commit's flow schema on the run's deployment (caller checked `needs_schema`)."""
    try:
        schema = compute_schema(result.python, entrypoint, result.checkout, env, timeout)
        stored = strict_schema(schema, result.commit)
        api.update_deployment(
            str(config.deployment_id),
            parameter_openapi_schema=stored,
            enforce_parameter_schema=True,
        )
    except (FlowSchemaError, PrefectAPIError) as exc:
        cause = " ".join(str(exc).split())
        logger.warning("Could not store the flow's parameter schema on its deployment: %s", cause)
        return
    names = parameter_names(stored)
    logger.info(
        "Deployment parameters from %s: %d (%s)",
        result.commit[:12],
        len(names),
        ", ".join(names) or "none",
    )
