"""`sunbeam-agent`: the agent image's entrypoint.

Finds its host id (SUNBEAM_HOST_ID, else the one recorded in the cache folder), waits for the
Prefect API, makes sure the work pool exists (never touching an existing pool's template unless
SUNBEAM_OVERWRITE_POOL=true) and so do its queues (the shared ones and `host-<host id>`), then runs
`prefect worker start --type sunbeam` named `<name>@<host id>` on those queues, with Prefect's
health check endpoint (port from PREFECT_WORKER_WEBSERVER_PORT). On SIGTERM or
SIGINT the worker drains (takes no new runs, stops once its runs are done); after
SUNBEAM_STOP_TIMEOUT whatever is left is stopped hard.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import httpx
from pydantic import ValidationError

from sunbeam_agent.errors import AgentError
from sunbeam_agent.host.identity import HostIdError, cache_host_id
from sunbeam_agent.host.worker import DRAIN_FILE_ENV
from sunbeam_agent.launch.settings import LaunchSettings, LaunchSettingsError
from sunbeam_agent.pools.crash_watch import CrashWatchError, crash_after_seconds
from sunbeam_agent.settings import AgentSettings
from sunbeam_contracts.hosts import SHARED_QUEUE, host_queue, worker_name
from sunbeam_contracts.processes import group_alive, restore_stop_signals, stop_groups


class AgentStartError(AgentError):
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
    from prefect.client.schemas.actions import WorkPoolUpdate

    from sunbeam_agent.host.worker import SunbeamWorker
    from sunbeam_agent.pools.templates import read_or_create_pool

    template = SunbeamWorker.get_default_base_job_template()
    async with get_client() as client:
        done, pool = await read_or_create_pool(client, name, SunbeamWorker.type, template)
        if done == "raced":  # another agent created it meanwhile
            say(f"work pool {name!r} was created by another agent")
            return "kept"
        if done == "created":
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


async def ensure_work_queues(
    pool: str, queues: list[str], say: Callable[[str], None] = _say
) -> list[str]:
    """Create the queues the pool lacks (the host's own, on its first start); returns those."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectAlreadyExists

    created = []
    async with get_client() as client:
        for queue in queues:
            try:
                await client.create_work_queue(name=queue, work_pool_name=pool)
            except ObjectAlreadyExists:
                continue
            say(f"created work queue {queue!r} in pool {pool!r}")
            created.append(queue)
    return created


def worker_queues(settings: AgentSettings, host_id: str) -> list[str]:
    """The shared queues, then the host's own (listed: an unlisted worker polls every queue)."""
    shared = settings.work_queues or [SHARED_QUEUE]
    return list(dict.fromkeys([*shared, host_queue(host_id)]))


def worker_command(settings: AgentSettings, host_id: str, instance: str) -> list[str]:
    prefect = str(Path(sys.executable).with_name("prefect"))
    command = [prefect, "worker", "start", "--pool", settings.work_pool, "--type", "sunbeam"]
    for queue in worker_queues(settings, host_id):
        command += ["--work-queue", queue]
    # The host id in the name: the webhook finds the live hosts in the pool's worker heartbeats.
    command += ["--name", worker_name(instance, host_id)]
    if settings.worker_limit:
        command += ["--limit", str(settings.worker_limit)]
    if settings.healthcheck:
        command.append("--with-healthcheck")
    return command


def run_worker(
    settings: AgentSettings, command: list[str], say: Callable[[str], None] = _say
) -> int:
    """Run the worker until it exits; on SIGTERM/SIGINT drain it, bounded.

    Draining: the worker takes no new runs and stops by itself once its runs are done. The
    worker and the flow processes it starts share one process group, which is waited for
    too (a flow reports its own final state). Whatever is still running when
    SUNBEAM_STOP_TIMEOUT is up is interrupted (runs still syncing are handed back), then killed.
    """
    drain_file = Path(tempfile.mkdtemp(prefix="sunbeam-agent-")) / "drain"
    worker = subprocess.Popen(
        command,
        env={**os.environ, DRAIN_FILE_ENV: str(drain_file)},
        start_new_session=True,
    )
    stopping: dict[str, float] = {}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if "since" in stopping:
            return
        stopping["since"] = time.monotonic()
        drain_file.touch()
        say(
            f"{signal.Signals(signum).name}: draining the worker; running flows get "
            f"{settings.stop_timeout:.0f}s to finish"
        )

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code: int | None = None
    while True:
        reaped = _reap_orphans()
        if code is None:
            code = reaped[worker.pid] if worker.pid in reaped else worker.poll()
        if code is not None and not group_alive(worker.pid):
            return code
        since = stopping.get("since")
        if since is None and code is not None:
            # The worker exited by itself: its flows must not outlive the agent unnoticed.
            stopping["since"] = time.monotonic()
            say(f"the worker exited ({code}); waiting for its flow runs to finish")
        elif since is not None and time.monotonic() - since > settings.stop_timeout:
            say(f"still busy after {settings.stop_timeout:.0f}s: stopping the worker and its runs")
            if code is None:
                # Prefect's interrupt: the worker tears down and hands back runs still syncing.
                _signal(worker, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.wait(timeout=10)
            stop_groups([worker.pid], grace=10.0)
            _reap_orphans()
            code = worker.poll()
            return code if code is not None else 143
        time.sleep(0.3)


def _reap_orphans() -> dict[int, int]:
    """As a container's PID 1 the agent inherits orphaned flow processes: reap them.

    Returns the exit codes of the processes reaped (the worker's among them, if it ended).
    """
    codes: dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return codes
        if pid == 0:
            return codes
        codes[pid] = os.waitstatus_to_exitcode(status)


def _signal(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signum)


def main() -> int:
    # Started in the background (`nohup … &`, a scheduler) SIGINT and SIGQUIT come ignored: the
    # worker, started below, must still stop on the SIGINT it sends itself once drained.
    restore_stop_signals()
    try:
        settings = AgentSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"SUNBEAM_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        _say(f"invalid settings: {problems}")
        return 2
    try:
        # Checked here, before any run: the worker sets up the pool's crash watch with one, and
        # every run's launcher reads the others (its heartbeat's among them).
        crash_after_seconds()
        LaunchSettings.from_environment()
        host_id = settings.host_id or cache_host_id(settings.cache_dir)
    except (HostIdError, CrashWatchError, LaunchSettingsError) as exc:
        _say(str(exc))
        return 2
    from prefect.settings import get_current_settings

    api_url = get_current_settings().api.url
    if not api_url:
        _say("PREFECT_API_URL is not set: point it at the Prefect server's /api")
        return 2
    try:
        wait_for_api(api_url, settings.api_wait_timeout)
        asyncio.run(ensure_work_pool(settings.work_pool, settings.overwrite_pool))
        asyncio.run(ensure_work_queues(settings.work_pool, worker_queues(settings, host_id)))
    except AgentStartError as exc:
        _say(str(exc))
        return 1
    command = worker_command(settings, host_id, settings.worker_name or _instance_name())
    _say(f"host id {host_id!r}; starting: " + " ".join(command))
    return run_worker(settings, command)


def _instance_name() -> str:
    # New at every start, as Prefect's own default worker name is.
    return f"sunbeam-{secrets.token_hex(4)}"


if __name__ == "__main__":
    sys.exit(main())
