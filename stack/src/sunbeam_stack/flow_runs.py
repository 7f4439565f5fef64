"""Request a deployment's flow run with the Prefect client and follow it to a final state.

Prefect's client retries the server's transient answers (a 503 while SQLite is busy) itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import StateType

from sunbeam_contracts import run_labels
from sunbeam_stack.processes import StackError

FINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}


@dataclass
class RunReport:
    run_id: str
    state: str
    message: str | None
    seconds_to_running: float | None
    seconds_total: float
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def sync_seconds(self) -> str:
        return self.labels.get(run_labels.SYNC_SECONDS, "?")

    @property
    def built(self) -> bool:
        return self.labels.get(run_labels.BUILT) == run_labels.TRUE


def run_and_wait(
    prefect_api: str,
    deployment: str,
    *,
    job_variables: dict[str, Any] | None = None,
    timeout: float = 900,
) -> RunReport:
    """Create a run of `deployment` ("flow/name") and wait for its final state."""
    started = time.monotonic()
    with SyncPrefectClient(api=prefect_api, httpx_settings={"timeout": 30}) as client:
        dep = client.read_deployment_by_name(deployment)
        run = client.create_flow_run_from_deployment(dep.id, job_variables=job_variables or {})
        running_at: float | None = None
        while True:
            run = client.read_flow_run(run.id)
            if running_at is None and run.state_type in ({StateType.RUNNING} | FINAL):
                running_at = time.monotonic() - started
            if run.state_type in FINAL:
                break
            if time.monotonic() - started > timeout:
                raise StackError(f"flow run {run.id} did not finish within {timeout:.0f}s")
            time.sleep(0.3)
    labels = {k: str(v) for k, v in (run.labels or {}).items() if k.startswith(run_labels.PREFIX)}
    return RunReport(
        run_id=str(run.id),
        state=run.state_type.value if run.state_type else "UNKNOWN",
        message=run.state.message if run.state else None,
        seconds_to_running=running_at,
        seconds_total=time.monotonic() - started,
        labels=labels,
    )
