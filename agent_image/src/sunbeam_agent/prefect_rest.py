"""A small client for Prefect's public REST API, on the standard library only.

`sunbeam-run` starts once per flow run and must be quick: importing Prefect's own client costs
seconds, this costs milliseconds. It speaks the same documented endpoints the Prefect client
uses (`/flow_runs`, `/deployments`, `/work_pools`, `/logs`) with the same settings
(PREFECT_API_URL, PREFECT_API_KEY or PREFECT_API_AUTH_STRING).
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

CONNECT_RETRIES = 3


class PrefectAPIError(Exception):
    """The Prefect API could not be reached or refused a request; the message says which."""


def concurrently(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent API calls at once (each is a round trip to the server); their results in
    order. Every call finishes before the first error (if any) is raised."""
    if len(calls) < 2:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
    return [future.result() for future in futures]


class PrefectREST:
    def __init__(self, api_url: str, headers: Mapping[str, str], timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.headers = {"Content-Type": "application/json", **headers}
        self.timeout = timeout

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> PrefectREST:
        api_url = environ.get("PREFECT_API_URL")
        if not api_url:
            raise PrefectAPIError(
                "PREFECT_API_URL is not set: point it at the Prefect server's /api"
            )
        headers: dict[str, str] = {}
        if auth := environ.get("PREFECT_API_AUTH_STRING"):
            headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
        elif key := environ.get("PREFECT_API_KEY"):
            headers["Authorization"] = f"Bearer {key}"
        return cls(api_url, headers)

    def request(self, method: str, path: str, body: Any = None, retries: int = 5) -> Any:
        data = None if body is None else json.dumps(body, default=str).encode()
        for attempt in range(retries + 1):
            req = urllib.request.Request(
                self.api_url + path, data=data, method=method, headers=self.headers
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as response:
                    raw = response.read()
                return json.loads(raw) if raw else None
            except urllib.error.HTTPError as exc:
                # 503: SQLite's write lock on a busy server; 429: rate limit. Prefect's client
                # retries both (5 times, backing off exponentially), so do we: with three agents
                # starting nine runs at once on SQLite, 3 s of linear backoff lost a run's labels.
                if exc.code in (429, 503) and attempt < retries:
                    time.sleep(min(0.5 * 2**attempt, 8.0))
                    continue
                detail = exc.read()[:300].decode(errors="replace")
                raise PrefectAPIError(f"{method} {path} answered {exc.code}: {detail}") from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt < min(
                    retries, CONNECT_RETRIES
                ):  # a down server is seldom back in seconds
                    time.sleep(0.5 * (attempt + 1))
                    continue
                raise PrefectAPIError(
                    f"the Prefect API at {self.api_url} did not answer ({exc}); "
                    "check PREFECT_API_URL"
                ) from None
        raise AssertionError("unreachable")

    # ----------------------------------------------------------------- endpoints we use
    def read_flow_run(self, flow_run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/flow_runs/{flow_run_id}")

    def read_deployment(self, deployment_id: str) -> dict[str, Any]:
        return self.request("GET", f"/deployments/{deployment_id}")

    def read_work_pool(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"/work_pools/{name}")

    def update_deployment(self, deployment_id: str, **fields: Any) -> None:
        self.request("PATCH", f"/deployments/{deployment_id}", fields)

    def update_flow_run(self, flow_run_id: str, **fields: Any) -> None:
        self.request("PATCH", f"/flow_runs/{flow_run_id}", fields)

    def update_labels(self, flow_run_id: str, labels: Mapping[str, str]) -> None:
        self.request("PATCH", f"/flow_runs/{flow_run_id}/labels", dict(labels))

    def set_state(
        self, flow_run_id: str, state_type: str, message: str, *, force: bool = False
    ) -> str:
        """Propose a state; returns the server's answer (ACCEPT, REJECT, ABORT, WAIT)."""
        state = {"type": state_type, "name": state_type.title(), "message": message}
        answer = self.request(
            "POST", f"/flow_runs/{flow_run_id}/set_state", {"state": state, "force": force}
        )
        return str((answer or {}).get("status", ""))

    def create_logs(self, logs: list[dict[str, Any]]) -> None:
        self.request("POST", "/logs/", logs, retries=1)
