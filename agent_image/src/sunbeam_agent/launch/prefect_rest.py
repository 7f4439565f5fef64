"""A small client for Prefect's public REST API, on the standard library.

`sunbeam-run` starts once per flow run and must be quick: importing Prefect's own client costs
seconds, this costs milliseconds. It speaks the same documented endpoints the Prefect client
uses (`/flow_runs`, `/deployments`, `/work_pools`, `/logs`) with the same settings
(PREFECT_API_URL, PREFECT_API_KEY or PREFECT_API_AUTH_STRING). A busy server is asked again on
the one schedule every Sunbeam caller uses (`sunbeam_contracts.prefect_api`).
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
from dataclasses import dataclass
from typing import Any

from sunbeam_agent.errors import AgentError
from sunbeam_contracts.prefect_api import BUSY_BUDGET_S, BUSY_STATUSES, FIRST_PAUSE_S, busy_pause

# A server that does not answer at all is tried this many times more (about 2.5 s), then named.
CONNECT_RETRIES = 6


class PrefectAPIError(AgentError):
    """The Prefect API could not be reached or refused a request; the message says which."""


def concurrently(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent API calls at once (each is a round trip to the server); their results in
    order. Every call finishes before the first error (if any) is raised."""
    if len(calls) < 2:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
    return [future.result() for future in futures]


@dataclass(frozen=True)
class _Outcome:
    """One attempt at a request: its answer, or the error and whether another try may help."""

    value: Any = None
    error: PrefectAPIError | None = None
    busy: bool = False  # BUSY_STATUSES: the server is there, try again after a while
    unreachable: bool = False  # no connection at all


class PrefectREST:
    def __init__(
        self,
        api_url: str,
        headers: Mapping[str, str],
        timeout: float = 30.0,
        backoff: float = FIRST_PAUSE_S,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.headers = {"Content-Type": "application/json", **headers}
        self.timeout = timeout
        self.backoff = backoff  # seconds before the first retry, doubling after each

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

    def request(self, method: str, path: str, body: Any = None, retries: int | None = None) -> Any:
        """One API call; PrefectAPIError says what failed.

        A busy answer is asked again on the shared schedule (at most `retries` times, default:
        until BUSY_BUDGET_S is spent); an unreachable server up to CONNECT_RETRIES times."""
        data = None if body is None else json.dumps(body, default=str).encode()
        deadline = time.monotonic() + BUSY_BUDGET_S
        busy = unreachable = 0
        while True:
            outcome = self._attempt(method, path, data)
            if outcome.error is None:
                return outcome.value
            busy += outcome.busy
            unreachable += outcome.unreachable
            pause = busy_pause(busy + unreachable, self.backoff)
            if outcome.busy and (retries is None or busy <= retries):
                if time.monotonic() + pause < deadline:
                    time.sleep(pause)
                    continue
            elif outcome.unreachable and unreachable <= CONNECT_RETRIES:
                time.sleep(pause)
                continue
            raise outcome.error

    def request_once(self, method: str, path: str, body: Any = None) -> Any:
        """One attempt, never asked again (for calls repeated on a schedule anyway)."""
        data = None if body is None else json.dumps(body, default=str).encode()
        outcome = self._attempt(method, path, data)
        if outcome.error is not None:
            raise outcome.error
        return outcome.value

    def _attempt(self, method: str, path: str, data: bytes | None) -> _Outcome:
        req = urllib.request.Request(
            self.api_url + path, data=data, method=method, headers=self.headers
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                raw = response.read()
            return _Outcome(value=json.loads(raw) if raw else None)
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            error = PrefectAPIError(f"{method} {path} answered {exc.code}: {detail}")
            return _Outcome(error=error, busy=exc.code in BUSY_STATUSES)
        except (urllib.error.URLError, OSError) as exc:
            error = PrefectAPIError(
                f"the Prefect API at {self.api_url} did not answer ({exc}); check PREFECT_API_URL"
            )
            return _Outcome(error=error, unreachable=True)

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
