"""`sunbeam-agent`: the agent image's entrypoint.

Waits for the Prefect API, makes sure the work pool exists (never touching an existing pool's
template unless SUNBEAM_OVERWRITE_POOL=true), then runs `prefect worker start --type sunbeam`
with Prefect's health check endpoint (port from PREFECT_WORKER_WEBSERVER_PORT). On SIGTERM or
SIGINT the worker is asked to stop gracefully (it stops taking runs and lets running flows
finish); after SUNBEAM_STOP_TIMEOUT it is stopped hard.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import httpx
from pydantic import ValidationError

from sunbeam_agent.settings import AgentSettings


class AgentStartError(Exception):
    """The agent cannot start; the message says why."""


def _say(message: str) -> None:
    print(f"sunbeam-agent: {message}", file=sys.stderr, flush=True)


def wait_for_api(api_url: str, timeout: float, say: Callable[[str], None] = _say) -> None:
    """Poll `<api>/health` until it answers, reporting progress every few seconds."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    next_report = started
    last_error = "no answer yet"
    while True:
        try:
            response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=5)
            if response.status_code == 200:
                say(f"Prefect API is up at {api_url} ({time.monotonic() - started:.1f}s)")
                return
            last_error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last_error = type(exc).__name__
        now = time.monotonic()
        if now >= deadline:
            raise AgentStartError(
                f"the Prefect API at {api_url} did not answer within {timeout:.0f}s "
                f"({last_error}); check PREFECT_API_URL and that the server is running"
            )
        if now >= next_report:
            say(f"waiting for the Prefect API at {api_url} ({now - started:.0f}s, {last_error})")
            next_report = now + 5
        time.sleep(1)


async def ensure_work_pool(name: str, overwrite: bool, say: Callable[[str], None] = _say) -> str:
    """Create the pool if missing; returns what was done ("created", "kept", "updated")."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    from sunbeam_agent.worker import SunbeamWorker

    template = SunbeamWorker.get_default_base_job_template()
    async with get_client() as client:
        try:
            pool = await client.read_work_pool(name)
        except ObjectNotFound:
            try:
                await client.create_work_pool(
                    WorkPoolCreate(name=name, type=SunbeamWorker.type, base_job_template=template)
                )
            except ObjectAlreadyExists:  # another agent created it meanwhile
                say(f"work pool {name!r} was created by another agent")
                return "kept"
            say(f"created work pool {name!r} (type {SunbeamWorker.type})")
            return "created"
        if pool.type != SunbeamWorker.type:
            raise AgentStartError(
                f"work pool {name!r} exists with type {pool.type!r}, not "
                f"{SunbeamWorker.type!r}; pick another SUNBEAM_WORK_POOL"
            )
        if overwrite:
            await client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))
            say(f"replaced the base job template of work pool {name!r}")
            return "updated"
        say(
            f"using existing work pool {name!r} (template kept; SUNBEAM_OVERWRITE_POOL=true "
            "replaces it)"
        )
        return "kept"


def worker_command(settings: AgentSettings) -> list[str]:
    prefect = str(Path(sys.executable).with_name("prefect"))
    command = [prefect, "worker", "start", "--pool", settings.work_pool, "--type", "sunbeam"]
    for queue in settings.work_queues:
        command += ["--work-queue", queue]
    if settings.worker_name:
        command += ["--name", settings.worker_name]
    if settings.worker_limit:
        command += ["--limit", str(settings.worker_limit)]
    if settings.healthcheck:
        command.append("--with-healthcheck")
    return command


def run_worker(settings: AgentSettings, say: Callable[[str], None] = _say) -> int:
    """Run the worker until it exits; stop it gracefully, then hard, on SIGTERM/SIGINT."""
    worker = subprocess.Popen(worker_command(settings), start_new_session=True)
    stopping: dict[str, float] = {}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if "since" in stopping:
            return
        stopping["since"] = time.monotonic()
        say(
            f"{signal.Signals(signum).name}: stopping the worker; running flows get "
            f"{settings.stop_timeout:.0f}s to finish"
        )
        # Prefect's worker turns this into a graceful stop: no new runs, running ones finish.
        _signal(worker, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while True:
        try:
            return worker.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
        since = stopping.get("since")
        if since is not None and time.monotonic() - since > settings.stop_timeout:
            say(f"the worker did not stop within {settings.stop_timeout:.0f}s: killing it")
            _signal(worker, signal.SIGKILL, group=True)
            worker.wait()
            return 143


def _signal(proc: subprocess.Popen[bytes], signum: int, group: bool = False) -> None:
    try:
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
    except ProcessLookupError:
        pass


def main() -> int:
    try:
        settings = AgentSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"SUNBEAM_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        _say(f"invalid settings: {problems}")
        return 2
    from prefect.settings import get_current_settings

    api_url = get_current_settings().api.url
    if not api_url:
        _say("PREFECT_API_URL is not set: point it at the Prefect server's /api")
        return 2
    try:
        wait_for_api(api_url, settings.api_wait_timeout)
        asyncio.run(ensure_work_pool(settings.work_pool, settings.overwrite_pool))
    except AgentStartError as exc:
        _say(str(exc))
        return 1
    _say("starting: " + " ".join(worker_command(settings)))
    return run_worker(settings)


if __name__ == "__main__":
    sys.exit(main())
