"""Request a deployment's flow run and follow it to a final state.

Through the agent's stdlib Prefect client (`PrefectREST`): no Prefect import for one request and
a poll, and a busy server is asked again on the schedule every Sunbeam caller uses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from sunbeam_agent.launch.prefect_rest import PrefectAPIError, PrefectREST
from sunbeam_contracts import run_labels
from sunbeam_stack.errors import StackError

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


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
    try:
        return _run_and_wait(prefect_api, deployment, job_variables or {}, timeout)
    except PrefectAPIError as exc:
        raise StackError(str(exc)) from None


def _run_and_wait(
    prefect_api: str, deployment: str, job_variables: dict[str, Any], timeout: float
) -> RunReport:
    started = time.monotonic()
    api = PrefectREST(prefect_api, {})
    flow, _, name = deployment.partition("/")
    dep = api.request("GET", f"/deployments/name/{quote(flow, safe='')}/{quote(name, safe='')}")
    body = {"job_variables": job_variables}
    run = api.request("POST", f"/deployments/{dep['id']}/create_flow_run", body)
    running_at: float | None = None
    while True:
        run = api.read_flow_run(run["id"])
        state_type = run.get("state_type")
        if running_at is None and state_type in {"RUNNING"} | FINAL:
            running_at = time.monotonic() - started
        if state_type in FINAL:
            break
        if time.monotonic() - started > timeout:
            raise StackError(f"flow run {run['id']} did not finish within {timeout:.0f}s")
        time.sleep(0.3)
    labels = {
        k: str(v) for k, v in (run.get("labels") or {}).items() if k.startswith(run_labels.PREFIX)
    }
    state = run.get("state") or {}
    return RunReport(
        run_id=str(run["id"]),
        state=state_type or "UNKNOWN",
        message=state.get("message"),
        seconds_to_running=running_at,
        seconds_total=time.monotonic() - started,
        labels=labels,
    )
