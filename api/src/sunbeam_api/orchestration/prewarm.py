"""Prewarm runs for a pushed commit: one per live host, so every host has the env before it runs.

A host is a cache folder (docs/scale-out.md). Its agents poll its own queue `host-<id>` and carry
the id in their worker names (`<name>@<id>`), so the pool's worker heartbeats say which hosts are
up. With no live host (no sunbeam agent heartbeating, or only workers of other types), one run on
the deployment's shared queue warms whichever host takes it, as before hosts had queues.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import WorkerFilter, WorkerFilterLastHeartbeatTime
from prefect.client.schemas.objects import FlowRun, Worker, WorkerStatus
from prefect.client.schemas.responses import DeploymentResponse

from sunbeam_api.orchestration.busy import retried_when_busy
from sunbeam_api.orchestration.deployments import main_deployment
from sunbeam_contracts import run_labels
from sunbeam_contracts.hosts import host_queue, worker_host
from sunbeam_contracts.tags import PREWARM_TAG, prewarm_idempotency_key, ref_tag

# Prefect's rule for a live worker: a heartbeat within three of its heartbeat intervals (30 s
# unless the worker said otherwise). The server stores ONLINE at each heartbeat and only its
# foreman service (which can be off) marks a silent worker OFFLINE, so the time is checked here.
MISSED_HEARTBEATS = 3
DEFAULT_HEARTBEAT_SECONDS = 30
HEARTBEAT_WINDOW = timedelta(hours=1)  # bounds the read; workers silent for longer are not live
_PAGE = 200
# All the hosts' runs are created within this, each retried at once while Prefect is busy
# (prefect_busy.py); past it Prefect's 503 answers, and GitHub may redeliver (the idempotency
# keys make that safe).
CREATE_BUDGET_S = 10.0


@dataclass(frozen=True)
class Prewarms:
    runs: list[FlowRun]
    hosts: list[str]  # the hosts prewarmed, one run each; empty: one run on the shared queue
    note: str | None = None


def is_live(worker: Worker, now: datetime) -> bool:
    if worker.status != WorkerStatus.ONLINE or worker.last_heartbeat_time is None:
        return False
    interval = worker.heartbeat_interval_seconds or DEFAULT_HEARTBEAT_SECONDS
    return now - worker.last_heartbeat_time < timedelta(seconds=interval * MISSED_HEARTBEATS)


async def live_hosts(client: PrefectClient, work_pool: str) -> list[str]:
    """The host ids named by the pool's ONLINE workers, sorted and distinct."""
    recent = WorkerFilter(
        last_heartbeat_time=WorkerFilterLastHeartbeatTime(
            after_=datetime.now(UTC) - HEARTBEAT_WINDOW
        )
    )
    hosts: set[str] = set()
    offset = 0
    while True:
        page = await client.read_workers_for_work_pool(
            work_pool, worker_filter=recent, limit=_PAGE, offset=offset
        )
        now = datetime.now(UTC)
        online = (w for w in page if is_live(w, now))
        hosts.update(host for w in online if (host := worker_host(w.name)))
        if len(page) < _PAGE:
            return sorted(hosts)
        offset += _PAGE


async def create_prewarm_runs(client: PrefectClient, commit: str, pushed_ref: str) -> Prewarms:
    """Sync-only runs of run-sunbeam/main on `commit`: one on each live host's queue.

    Keyed by commit and host: a redelivered webhook, or the same commit pushed to two branches,
    reuses the runs; a host that came up since gets its own.
    """
    deployment = await main_deployment(client)
    pool = deployment.work_pool_name
    hosts = await live_hosts(client, pool) if pool else []
    deadline = time.monotonic() + CREATE_BUDGET_S
    if not hosts:
        run = await _prewarm_run(client, deployment, commit, pushed_ref, None, deadline)
        note = (
            f"no live sunbeam agent in work pool {pool!r}: one prewarm run on the shared queue, "
            "for whichever host takes it"
        )
        return Prewarms([run], [], note)
    runs = [await _prewarm_run(client, deployment, commit, pushed_ref, h, deadline) for h in hosts]
    return Prewarms(runs, hosts)


async def _prewarm_run(
    client: PrefectClient,
    deployment: DeploymentResponse,
    commit: str,
    pushed_ref: str,
    host: str | None,
    deadline: float,
) -> FlowRun:
    labels: dict[str, bool | int | float | str] = {run_labels.PUSHED_REF: pushed_ref}
    if host is not None:
        labels[run_labels.PREWARM_HOST] = host
    return await retried_when_busy(
        lambda: client.create_flow_run_from_deployment(
            deployment.id,
            job_variables={"ref": commit, "sync_only": True},
            tags=[PREWARM_TAG, ref_tag(commit)],
            idempotency_key=prewarm_idempotency_key(commit, host),
            name=f"prewarm-{commit[:12]}" + (f"@{host}" if host else ""),
            labels=labels,
            work_queue_name=host_queue(host) if host else None,
        ),
        deadline,
    )
