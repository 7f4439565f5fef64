"""Request a deployment's flow run over Prefect's REST API and follow it to a final state."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from sunbeam_api.local.processes import StackError

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
        return self.labels.get("sunbeam.sync_seconds", "?")


def _request(client: httpx.Client, method: str, path: str, **kw: Any) -> Any:
    # Prefect answers 503 while SQLite is busy; its own client retries those too.
    for attempt in range(8):
        resp = client.request(method, path, **kw)
        if resp.status_code not in (502, 503):
            break
        time.sleep(0.25 * (attempt + 1))
    if resp.status_code >= 400:
        raise StackError(f"Prefect API {method} {path}: HTTP {resp.status_code} {resp.text[:300]}")
    return resp.json()


def deployment_id(prefect_api: str, name: str) -> str:
    with httpx.Client(base_url=prefect_api, timeout=30) as client:
        flow, dep = name.split("/", 1)
        return str(_request(client, "GET", f"/deployments/name/{flow}/{dep}")["id"])


def run_and_wait(
    prefect_api: str,
    deployment: str,
    *,
    job_variables: dict[str, Any] | None = None,
    timeout: float = 900,
) -> RunReport:
    started = time.monotonic()
    with httpx.Client(base_url=prefect_api, timeout=30) as client:
        dep_id = deployment_id(prefect_api, deployment)
        run = _request(
            client,
            "POST",
            f"/deployments/{dep_id}/create_flow_run",
            json={"job_variables": job_variables or {}},
        )
        running_at: float | None = None
        while True:
            run = _request(client, "GET", f"/flow_runs/{run['id']}")
            if running_at is None and run["state_type"] in ({"RUNNING"} | FINAL):
                running_at = time.monotonic() - started
            if run["state_type"] in FINAL:
                break
            if time.monotonic() - started > timeout:
                raise StackError(f"flow run {run['id']} did not finish within {timeout:.0f}s")
            time.sleep(0.3)
    labels = {k: str(v) for k, v in (run.get("labels") or {}).items() if k.startswith("sunbeam.")}
    return RunReport(
        run_id=run["id"],
        state=run["state_type"],
        message=(run.get("state") or {}).get("message"),
        seconds_to_running=running_at,
        seconds_total=time.monotonic() - started,
        labels=labels,
    )
