"""`sunbeam prewarm REF`: build a ref's environment on every live host before anyone runs it.

Asks the API (`POST /prewarm`, the push webhook's per-host prewarm) for the stack in
SUNBEAM_API_URL / SUNBEAM_API_KEY (what `sunbeam env` exports, what an operator sets for a
Compose stack), else for the `sunbeam up` stack of this checkout. A git hook runs it after each
commit (docs/scale-out.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from sunbeam_stack.errors import StackError
from sunbeam_stack.local.shell_env import stack_values
from sunbeam_stack.settings import StackSettings

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
_WAIT_POLL_S = 0.5


def api_target(api_url: str | None, state_dir: Path) -> tuple[str, str | None]:
    """(API URL, API key): the option, then the environment, then the local stack's."""
    settings = StackSettings()
    url = api_url or settings.api_url
    key = settings.api_key.get_secret_value() if settings.api_key else None
    if url and key:
        return url, key
    try:
        local = stack_values(state_dir)
    except StackError as exc:
        if url:  # the API answers for itself whether it wants a key
            return url, key
        raise StackError(f"{exc}; or set SUNBEAM_API_URL and SUNBEAM_API_KEY") from None
    return url or local["SUNBEAM_API_URL"], key or local.get("SUNBEAM_API_KEY")


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.is_success:
        return response.json()
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    raise StackError(str(detail or f"the API answered HTTP {response.status_code}"))


def request_prewarm(http: httpx.Client, ref: str) -> dict[str, Any]:
    """The API's answer: ref, commit, runs, hosts, note."""
    return _answer(http.post("/prewarm", json={"ref": ref}))


def summary(answer: dict[str, Any]) -> str:
    where = ", ".join(answer["hosts"]) if answer["hosts"] else "the shared queue"
    line = f"prewarming {answer['ref']} ({answer['commit'][:12]}) on {where}"
    return f"{line}: {answer['note']}" if answer.get("note") else line


def wait_for_runs(
    http: httpx.Client, runs: list[str], say: Callable[[str], None], timeout: float
) -> bool:
    """Wait until every prewarm run ended, saying each outcome; True when all completed."""
    deadline = time.monotonic() + timeout
    pending, ok = list(runs), True
    while pending:
        for run_id in list(pending):
            run = _answer(http.get(f"/runs/{run_id}"))
            if run["state"] not in FINAL:
                continue
            pending.remove(run_id)
            ok = ok and run["state"] == "COMPLETED"
            say(f"{run['name']}: {run['state_name']}: {run['state_message'] or ''}".rstrip(": "))
        if pending and time.monotonic() > deadline:
            raise StackError(f"{len(pending)} prewarm run(s) still going after {timeout:.0f}s")
        if pending:
            time.sleep(_WAIT_POLL_S)
    return ok


def prewarm(
    ref: str,
    api_url: str | None,
    state_dir: Path,
    say: Callable[[str], None],
    wait: float | None = None,
) -> int:
    """Ask for the prewarm; with `wait`, wait that many seconds for the runs. Exit code."""
    url, key = api_target(api_url, state_dir)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            answer = request_prewarm(http, ref)
            say(summary(answer))
            if wait is None:
                return 0
            return 0 if wait_for_runs(http, [str(r) for r in answer["runs"]], say, wait) else 1
    except httpx.HTTPError as exc:
        raise StackError(
            f"the Sunbeam API at {url} is unreachable ({type(exc).__name__})"
        ) from None
