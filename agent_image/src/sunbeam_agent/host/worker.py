"""Prefect worker type `sunbeam`: the process worker, with `sunbeam-run` as the command.

Start it with `prefect worker start --pool POOL --type sunbeam`. For each flow run the worker
resolves the job configuration (Prefect's own code), points its command at the `sunbeam-run`
launcher with the run's ref, repo and folders in `SUNBEAM_RUN_*` variables, and hands it to
`ProcessWorker.run()`. The launcher syncs the ref's env (its lines in the run's log), records the
run's provenance and replaces itself with the engine in that env. Built on public Prefect APIs
only, as prefect-docker and prefect-kubernetes build on `BaseWorker`.

The worker adds what the process worker lacks for Sunbeam: runs picked up the moment they are
created, not at the next poll (`wakeup.py`), `on_crashed`/`on_cancellation` hooks run in the
ref's env (`hooks.py`), draining on SIGTERM (the container entrypoint), and its pool's crash
watch (`pools/crash_watch.py`: a run whose infrastructure died ends Crashed).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from prefect.logging import get_logger
from prefect.states import Cancelling, Crashed
from prefect.workers.process import (
    ProcessJobConfiguration,
    ProcessVariables,
    ProcessWorker,
    ProcessWorkerResult,
)
from pydantic import Field

from sunbeam_agent.host.hooks import EnvHookRunner, install_worker_hook_notice
from sunbeam_agent.host.wakeup import RunWakeup
from sunbeam_agent.launch.run_config import variables_as_env
from sunbeam_agent.pools.crash_watch import (
    CrashWatchError,
    crash_after_seconds,
    crash_watch_note,
    ensure_crash_watch,
)

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.schemas.objects import FlowRun

# When this file exists the worker drains: it takes no new runs and stops once idle
# (the container entrypoint creates it on SIGTERM).
DRAIN_FILE_ENV = "SUNBEAM_DRAIN_FILE"
# A run the worker claimed reaches run() within moments; a claim older than this is stale
# (Prefect decided not to run it) and no longer keeps a draining worker alive.
CLAIM_SECONDS = 30.0


def launcher_command() -> str:
    """`sunbeam-run` next to this interpreter (the agent's venv), else on PATH."""
    beside = Path(sys.executable).with_name("sunbeam-run")
    return shlex.quote(str(beside)) if beside.exists() else "sunbeam-run"


class SunbeamJobConfiguration(ProcessJobConfiguration):
    repo_url: str | None = Field(default=None)
    ref: str = Field(default="main")
    project_dir: str = Field(default=".")
    cache_dir: str | None = Field(default=None)
    sync_only: bool = Field(default=False)

    def prepare_for_flow_run(self, *args: Any, **kwargs: Any) -> None:
        # The command is always the launcher: the interpreter comes from the ref's own lock.
        self.command = launcher_command()
        super().prepare_for_flow_run(*args, **kwargs)
        self.env.update(
            variables_as_env(
                {
                    "repo_url": self.repo_url,
                    "ref": self.ref,
                    "project_dir": self.project_dir,
                    "cache_dir": self.cache_dir,
                    "sync_only": self.sync_only,
                }
            )
        )
        if not self.repo_url:  # the launcher says so on the run; a stale value must not leak in
            self.env.pop("SUNBEAM_RUN_REPO_URL", None)


class SunbeamWorkerVariables(ProcessVariables):
    repo_url: str | None = Field(
        default=None,
        title="Git repository URL",
        description="The pipeline repository (https://, ssh or file:// URL).",
    )
    ref: str = Field(
        default="main",
        title="Git ref",
        description=(
            "Branch, tag or commit SHA to run. Set it per run to run another ref on the "
            "same deployment."
        ),
    )
    project_dir: str = Field(
        default=".",
        title="Project directory",
        description=(
            "Directory inside the repository holding pyproject.toml and uv.lock; the "
            "deployment's entrypoint is relative to it."
        ),
    )
    cache_dir: str | None = Field(
        default=None,
        title="Cache directory",
        description=(
            "Where git mirrors, checkouts and environments are kept. Workers on one host "
            "may share it. Empty: the agent's default (SUNBEAM_CACHE_DIR)."
        ),
    )
    sync_only: bool = Field(
        default=False,
        title="Sync only (prewarm)",
        description="Prepare the ref's environment and complete without running the flow.",
    )


class SunbeamWorkerResult(ProcessWorkerResult):
    """Outcome of one flow run handled by the sunbeam worker."""


class SunbeamWorker(ProcessWorker):
    type = "sunbeam"
    job_configuration = SunbeamJobConfiguration
    # ProcessWorker declares it None (it has none); a worker type with variables sets a class.
    job_configuration_variables = SunbeamWorkerVariables  # type: ignore[assignment]

    _description = (
        "Runs each flow run on its git ref's own locked environment: checks out the ref, "
        "syncs its uv.lock into a cached virtualenv shared by every ref with the same lock, "
        "then runs the flow there."
    )
    _display_name = "Sunbeam"
    _documentation_url = "https://github.com/sunbeam/sunbeam/blob/main/docs/contracts.md"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        install_worker_hook_notice()
        self._sunbeam_active = 0
        self._sunbeam_claims: dict[Any, float] = {}
        self._sunbeam_stop_sent = False
        # One poll at a time: the poll loop's and the run events' (a poll racing another one
        # could read the runs before the other claimed them, and only log duplicates).
        self._sunbeam_poll_lock = anyio.Lock()
        self._sunbeam_wakeup = RunWakeup(
            poll=self.get_and_submit_flow_runs,
            pool_id=self._sunbeam_pool_id,
            queues=kwargs.get("work_queues") or (),
            logger=get_logger("prefect.workers.sunbeam"),
        )
        self._sunbeam_wakeup_group: anyio.abc.TaskGroup | None = None
        self._sunbeam_watched = False  # the pool's crash watch is in place

    async def sync_with_backend(self) -> None:
        await super().sync_with_backend()
        if not self._sunbeam_watched and self._sunbeam_pool_id() is not None:
            await self._sunbeam_ensure_crash_watch()

    async def _sunbeam_ensure_crash_watch(self) -> None:
        """Once per worker, when it first knows its pool (tried again at the next sync)."""
        logger = get_logger("prefect.workers.sunbeam")
        pool = self.work_pool
        try:
            seconds = crash_after_seconds()
        except CrashWatchError as exc:
            self._sunbeam_watched = True  # said once; the setting will not change
            logger.error("%s; runs whose infrastructure dies stay Running", exc)
            return
        try:
            done = await ensure_crash_watch(self.client, pool.name, pool.id, seconds)
        except Exception as exc:  # a busy or old server: the next sync tries again
            logger.warning("Could not set up the crash watch of pool %r: %s", pool.name, exc)
            return
        self._sunbeam_watched = True
        logger.info(crash_watch_note(pool.name, seconds, done))

    def _sunbeam_pool_id(self) -> UUID | None:
        try:
            return self.work_pool.id
        except RuntimeError:  # not synced with the pool yet
            return None

    async def setup(self) -> None:
        await super().setup()
        # Beside Prefect's poll loop, for as long as the worker is open (teardown stops it).
        group = anyio.create_task_group()
        await group.__aenter__()
        group.start_soon(self._sunbeam_wakeup.serve)
        self._sunbeam_wakeup_group = group

    async def teardown(self, *exc_info: Any) -> None:
        group, self._sunbeam_wakeup_group = self._sunbeam_wakeup_group, None
        if group is not None:
            group.cancel_scope.cancel()
            await group.__aexit__(None, None, None)
        await super().teardown(*exc_info)

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        async with self._sunbeam_poll_lock:
            return await self._sunbeam_poll()

    async def _sunbeam_poll(self) -> list[FlowRun]:
        drain_file = os.environ.get(DRAIN_FILE_ENV)
        if not drain_file or not os.path.exists(drain_file):
            submitted = await super().get_and_submit_flow_runs()
            now = time.monotonic()
            self._sunbeam_claims.update({run.id: now for run in submitted})
            return submitted
        now = time.monotonic()
        claims = [t for t in self._sunbeam_claims.values() if now - t < CLAIM_SECONDS]
        if not self._sunbeam_active and not claims and not self._sunbeam_stop_sent:
            self._sunbeam_stop_sent = True
            get_logger("prefect.workers.sunbeam").info("Drained: no flow runs left; stopping")
            # Prefect's own interrupt path stops the worker cleanly once it is idle.
            os.kill(os.getpid(), signal.SIGINT)
        return []

    async def run(
        self,
        flow_run: FlowRun,
        configuration: SunbeamJobConfiguration,  # type: ignore[override]
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> SunbeamWorkerResult:
        self._sunbeam_active += 1
        self._sunbeam_claims.pop(flow_run.id, None)
        # Every worker the run's event woke logs Prefect's "submitting flow run" line, but only
        # the one whose Pending state the server accepted gets here: this line names the host.
        get_logger("prefect.workers.sunbeam").info("Running flow run '%s' here", flow_run.id)
        try:
            with tempfile.TemporaryDirectory(prefix="sunbeam-run-") as folder:
                record = Path(folder, "run.json")
                configuration.env["SUNBEAM_RUN_RECORD"] = str(record)
                result = await super().run(flow_run, configuration, task_status)
                with anyio.CancelScope(shield=True):
                    await self._run_env_hooks(flow_run, configuration, record, result.status_code)
        finally:
            self._sunbeam_active -= 1
        return SunbeamWorkerResult(status_code=result.status_code, identifier=result.identifier)

    async def _final_state(self, flow_run: FlowRun, status_code: int) -> FlowRun:
        """The run as its hooks must see it. Prefect 3.9's process worker reports a crash before
        run() returns; older 3.x workers do it after, so a run still Running whose process failed
        is reported Crashed here, with the message Prefect itself uses."""
        final = await self.client.read_flow_run(flow_run.id)
        if status_code != 0 and final.state is not None and final.state.is_running():
            message = f"Flow run infrastructure exited with non-zero status code {status_code}."
            await self.client.set_flow_run_state(flow_run.id, Crashed(message=message))
            final = await self.client.read_flow_run(flow_run.id)
        return final

    async def _run_env_hooks(
        self,
        flow_run: FlowRun,
        configuration: SunbeamJobConfiguration,
        record: Path,
        status_code: int,
    ) -> None:
        """on_crashed / on_cancellation hooks, in the ref's env, once the flow process is gone.

        Only when the flow really started (the launcher wrote the record just before exec).
        """
        if not record.exists():
            return
        try:
            started = json.loads(record.read_text(encoding="utf-8"))
            final = await self._final_state(flow_run, status_code)
        except Exception as exc:
            self.get_flow_run_logger(flow_run).warning("Could not run the flow's hooks: %s", exc)
            return
        state = final.state
        if state is None:
            return
        runner = EnvHookRunner(
            python=started["python"],
            entrypoint=started["entrypoint"],
            cwd=Path(started["checkout"]),
            env={**configuration.env, **started.get("env", {})},
        )
        if state.is_crashed():
            await runner.run_crashed_hooks(final, state)
        elif state.is_cancelled() or state.is_cancelling():  # older 3.x: still Cancelling here
            await runner.run_cancellation_hooks(final, Cancelling(message=state.message))
