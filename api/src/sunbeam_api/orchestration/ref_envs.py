"""Has my push landed? Each branch of the pipeline repository, its head, its env on each host.

Git says which branches there are and where each points (`git ls-remote`); Prefect's runs say
the rest. The agent labels every run with the commit and env key it synced (docs/contracts.md),
Prefect labels it with the worker that took it (`prefect.worker.name`, `<name>@<host>`), and the
push webhook's prewarm runs carry the host they are for. So for a branch's head and each host:
the newest run of that commit there tells whether its env is queued, syncing, building, ready
or failed (with the run's one-line cause); a run of another commit with the same env key that
synced there means ready too (the env is keyed by the lock, not the commit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from pydantic import BaseModel, Field

from sunbeam_api.errors import DisabledError
from sunbeam_api.orchestration.prewarm import live_hosts
from sunbeam_api.orchestration.remote_refs import remote_branches
from sunbeam_api.orchestration.runs import FUTURE_MARGIN, RunSummary, summarize
from sunbeam_contracts import run_labels
from sunbeam_contracts.hosts import worker_host
from sunbeam_contracts.naming import FLOW_NAME
from sunbeam_contracts.ref_rules import FULL_SHA

RECENT_RUNS = 200  # the runs read to answer (Prefect's page); older ones say nothing new
WORKER_NAME = "prefect.worker.name"  # the label Prefect's workers put on the runs they take
ANY_HOST = "any host"  # a run no agent has taken yet: whichever host takes it builds the env

EnvStatus = Literal["queued", "syncing", "building", "ready", "failed", "not built"]


class HostEnv(BaseModel):
    host: str
    status: EnvStatus
    detail: str | None = Field(default=None, description="why the env failed (one line)")
    run_id: UUID | None = Field(default=None, description="the run this status comes from")


class RefEnvs(BaseModel):
    ref: str
    commit: str = Field(description="the branch's head commit")
    env_key: str | None = Field(description="its env's key, once an agent has synced it")
    hosts: list[HostEnv] = Field(description="its env on each live host (and any host seen)")
    last_run: RunSummary | None = Field(description="the branch's newest run (not a prewarm)")
    last_activity: datetime | None = Field(description="the newest run of the branch or head")


@dataclass(frozen=True)
class _Run:
    summary: RunSummary
    labels: dict[str, Any]
    commit: str | None
    host: str
    status: EnvStatus | None
    at: datetime


def require_repo(repo: str | None) -> str:
    if not repo:
        raise DisabledError(
            "the pipeline repository is not set: set SUNBEAM_PIPELINE_REPO to its URL"
        )
    return repo


async def ref_envs(
    client: PrefectClient, repo_url: str, work_pool: str, timeout: float
) -> list[RefEnvs]:
    """Every branch, the one with the newest run first (then by name)."""
    branches = await remote_branches(repo_url, timeout)
    hosts = await live_hosts(client, work_pool)
    runs = [_read(r) for r in await _recent_runs(client)]
    rows = [_row(ref, head, runs, hosts) for ref, head in branches.items()]
    never = datetime.min.replace(tzinfo=UTC)
    rows.sort(key=lambda r: r.ref)
    rows.sort(key=lambda r: r.last_activity or never, reverse=True)
    return rows


async def _recent_runs(client: PrefectClient) -> list[FlowRun]:
    # Not the nightly schedule's future runs: they say nothing about any env yet.
    horizon = FlowRunFilterExpectedStartTime(before_=datetime.now(UTC) + FUTURE_MARGIN)
    return await client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
        flow_run_filter=FlowRunFilter(expected_start_time=horizon),
        sort=FlowRunSort.EXPECTED_START_TIME_DESC,
        limit=RECENT_RUNS,
    )


def _read(run: FlowRun) -> _Run:
    labels = dict(run.labels or {})
    recorded = labels.get(run_labels.COMMIT)
    commit = recorded if isinstance(recorded, str) else None
    ref = (run.job_variables or {}).get("ref")
    if not commit and isinstance(ref, str) and FULL_SHA.match(ref):
        commit = ref  # a prewarm run: its ref is the pushed commit
    for_host = labels.get(run_labels.PREWARM_HOST)
    host = str(for_host) if for_host else worker_host(str(labels.get(WORKER_NAME, "")))
    at = run.start_time or run.created or datetime.min.replace(tzinfo=UTC)
    summary = summarize(run)
    return _Run(summary, labels, commit, host or ANY_HOST, _status(run, labels), at)


def _status(run: FlowRun, labels: dict[str, Any]) -> EnvStatus | None:
    """What one run says about its env where it ran (None: nothing, e.g. cancelled)."""
    state = run.state_type
    synced = labels.get(run_labels.PHASE) == run_labels.SYNCED
    if state is StateType.SCHEDULED:
        return "queued"
    if state is StateType.PENDING:
        phase = labels.get(run_labels.PHASE)
        return "building" if phase == run_labels.BUILDING else "ready" if synced else "syncing"
    if state in (StateType.RUNNING, StateType.COMPLETED) or synced:
        return "ready"  # it ran, so its env was there (a flow that failed still had its env)
    if state in (StateType.FAILED, StateType.CRASHED):
        return "failed"
    return None


def _row(ref: str, head: str, runs: list[_Run], hosts: list[str]) -> RefEnvs:
    mine = [r for r in runs if r.commit == head and r.status is not None]
    keys = [r.summary.env_key for r in mine if r.summary.env_key]
    env_key = keys[0] if keys else None
    seen = [h for h in dict.fromkeys(r.host for r in mine) if h not in hosts]
    own = [r for r in runs if r.summary.ref == ref and not r.summary.prewarm]
    activity = [r.at for r in runs if r.summary.ref == ref or r.commit == head]
    return RefEnvs(
        ref=ref,
        commit=head,
        env_key=env_key,
        hosts=[_on_host(h, mine, runs, env_key) for h in [*hosts, *seen]],
        last_run=own[0].summary if own else None,
        last_activity=max(activity) if activity else None,
    )


def _on_host(host: str, mine: list[_Run], runs: list[_Run], env_key: str | None) -> HostEnv:
    here = [r for r in mine if r.host == host]
    if here:
        newest = here[0]
        detail = newest.summary.state_message if newest.status == "failed" else None
        status = newest.status or "not built"  # `mine` holds runs with a status only
        return HostEnv(host=host, status=status, detail=detail, run_id=newest.summary.id)
    same_env = [
        r for r in runs
        if r.host == host and r.status == "ready" and env_key and r.summary.env_key == env_key
    ]  # fmt: skip
    if same_env:
        return HostEnv(host=host, status="ready", run_id=same_env[0].summary.id)
    return HostEnv(host=host, status="not built")
