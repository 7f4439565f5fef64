"""What `sunbeam-run` needs to know about its flow run: the job variables and the entrypoint.

Job variables are merged the way Prefect merges them for a worker: the work pool's defaults,
then the deployment's, then the run's own. `SUNBEAM_RUN_*` environment variables win over all
of them: a worker that already resolved the configuration (ours does) or a base job template
may pass them, and then no pool needs to be read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sunbeam_agent.errors import AgentError
from sunbeam_agent.launch.prefect_rest import PrefectREST, concurrently
from sunbeam_contracts import run_labels
from sunbeam_contracts.ref_rules import HEX_SHA
from sunbeam_contracts.tags import tagged_commits, tagged_refs

VARIABLES = ("repo_url", "ref", "project_dir", "cache_dir", "sync_only")
ENV_PREFIX = "SUNBEAM_RUN_"
DEFAULTS: dict[str, Any] = {"ref": "main", "project_dir": ".", "sync_only": False}


class RunConfigError(AgentError):
    """The run's configuration is unusable; the message says what to set."""


@dataclass(frozen=True)
class RunConfig:
    flow_run_id: str
    flow_run_name: str
    tags: list[str]
    repo_url: str
    ref: str
    project_dir: str
    cache_dir: str | None
    sync_only: bool
    entrypoint: str | None
    # The deployment's own side (flow_schema.py): its id, its job variables, its stored schema.
    deployment_id: str | None = None
    deployment_variables: Mapping[str, Any] = field(default_factory=dict)
    deployment_schema: Mapping[str, Any] | None = None
    # An exact rerun (docs/contracts.md): the commit to run instead of the ref's latest, what
    # pinned it ("retry": an earlier attempt of this run ran it; "rerun": `POST /runs/{id}/rerun`;
    # "tag": a `sunbeam-commit:` tag, as "Copy to new run" copies it), the run it repeats, and
    # the env key the earlier attempt used.
    commit: str | None = None
    pinned_by: str | None = None
    rerun_of: str | None = None
    previous_env_key: str | None = None


def env_name(variable: str) -> str:
    return ENV_PREFIX + variable.upper()


def variables_as_env(values: Mapping[str, Any]) -> dict[str, str]:
    """The `SUNBEAM_RUN_*` form of resolved job variables (None values left out)."""
    env = {}
    for name in VARIABLES:
        value = values.get(name)
        if value is None:
            continue
        env[env_name(name)] = (
            ("true" if value else "false") if isinstance(value, bool) else str(value)
        )
    return env


def _pool_defaults(api: PrefectREST, pool_name: str | None) -> dict[str, Any]:
    if not pool_name:
        return {}
    pool = api.read_work_pool(pool_name)
    properties = (pool.get("base_job_template") or {}).get("variables", {}).get("properties", {})
    return {
        k: v["default"] for k, v in properties.items() if isinstance(v, dict) and "default" in v
    }


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _tagged_ref(flow_run: dict[str, Any], deployment: dict[str, Any]) -> str | None:
    own = set(flow_run.get("tags") or []) - set(deployment.get("tags") or [])
    refs = sorted(tagged_refs(sorted(own)))
    if len(refs) > 1:
        raise RunConfigError(
            f"The run has several ref tags ({', '.join(refs)}): keep one sunbeam-ref: tag"
        )
    return refs[0] if refs and refs[0] else None


def _pin(flow_run: dict[str, Any], deployment: dict[str, Any]) -> tuple[str | None, str | None]:
    """The commit the run must run and what pinned it; (None, None): the ref's latest commit."""
    labels = flow_run.get("labels") or {}
    commit = labels.get(run_labels.COMMIT)
    if isinstance(commit, str) and HEX_SHA.match(commit):
        return commit, "rerun" if labels.get(run_labels.RERUN_OF) else "retry"
    own = set(flow_run.get("tags") or []) - set(deployment.get("tags") or [])
    commits = sorted(set(tagged_commits(sorted(own))))
    if len(commits) > 1:
        raise RunConfigError(
            f"The run has several commit tags ({', '.join(commits)}): keep one sunbeam-commit: tag"
        )
    if commits and not HEX_SHA.match(commits[0]):
        raise RunConfigError(
            f"The run's tag sunbeam-commit:{commits[0][:40]} is not a commit: give 7 to 40 hex "
            "digits, or remove the tag to run the ref's latest commit"
        )
    return (commits[0], "tag") if commits else (None, None)


def resolve(
    api: PrefectREST, flow_run: dict[str, Any], run_variables: Mapping[str, str] | None = None
) -> RunConfig:
    """The run's configuration; `run_variables`: the SUNBEAM_RUN_* ones (LaunchSettings)."""
    from_env = {k: v for k, v in (run_variables or {}).items() if k in VARIABLES}
    whole = len(from_env) == len(VARIABLES)  # then no pool needs to be read
    deployment_id = flow_run.get("deployment_id")
    deployment, pool = concurrently(  # one round trip, not two
        lambda: api.read_deployment(deployment_id) if deployment_id else {},
        lambda: {} if whole else _pool_defaults(api, flow_run.get("work_pool_name")),
    )
    values: dict[str, Any] = dict(DEFAULTS)
    if not whole:
        values.update(pool)
        values.update(deployment.get("job_variables") or {})
        values.update(flow_run.get("job_variables") or {})
    values.update(from_env)
    # The dashboard's run form has a Tags field: a run created with `sunbeam-ref:REF` runs REF
    # (unless the run's own job variables choose another ref). Prefect's V2 form sends the
    # deployment's job variables as the run's own, so a `ref` equal to the deployment's is no
    # choice of the run's. Deployment tags are the deployment's.
    tagged = _tagged_ref(flow_run, deployment)
    own_ref = (flow_run.get("job_variables") or {}).get("ref")
    if tagged is not None and own_ref in (None, (deployment.get("job_variables") or {}).get("ref")):
        values["ref"] = tagged
    repo_url = values.get("repo_url")
    if not repo_url:
        raise RunConfigError(
            "Job variable repo_url is not set: set it on the deployment or the run"
        )
    for name in ("ref", "project_dir"):
        if not isinstance(values.get(name), str) or not values[name]:
            raise RunConfigError(f"Invalid job variables: {name} must be a non-empty string")
    commit, pinned_by = _pin(flow_run, deployment)
    labels = flow_run.get("labels") or {}
    return RunConfig(
        flow_run_id=str(flow_run["id"]),
        flow_run_name=str(flow_run.get("name") or ""),
        tags=list(flow_run.get("tags") or []),
        repo_url=str(repo_url),
        ref=values["ref"],
        project_dir=values["project_dir"],
        cache_dir=str(values["cache_dir"]) if values.get("cache_dir") else None,
        sync_only=_flag(values.get("sync_only")),
        entrypoint=deployment.get("entrypoint"),
        deployment_id=str(deployment["id"]) if deployment.get("id") else None,
        deployment_variables=dict(deployment.get("job_variables") or {}),
        deployment_schema=deployment.get("parameter_openapi_schema"),
        commit=commit,
        pinned_by=pinned_by,
        rerun_of=_text(labels.get(run_labels.RERUN_OF)),
        previous_env_key=_text(labels.get(run_labels.ENV_KEY)),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
