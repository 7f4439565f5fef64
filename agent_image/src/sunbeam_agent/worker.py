"""Prefect worker type `sunbeam`: every flow run runs on its git ref's synced environment.

Start it with `prefect worker start --pool POOL --type sunbeam`. Per flow run the worker
prepares the ref's checkout and env through `sunbeam_sync` (streaming every step into the
run's log), records which commit and env the run used as flow-run labels, and starts the
engine with the env's interpreter from the checkout, exactly as the process worker would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from prefect.exceptions import Abort, ObjectNotFound
from prefect.logging.loggers import PrefectLogAdapter
from prefect.runner._flow_run_executor import FlowRunExecutionResult, FlowRunExecutorContext
from prefect.runner._process_manager import ProcessHandle
from prefect.runner._starter_engine import EngineCommandStarter
from prefect.states import Cancelled, Completed, Failed, Scheduled
from prefect.utilities.engine import propose_state
from prefect.utilities.processutils import command_to_string
from prefect.workers.process import (
    ProcessJobConfiguration,
    ProcessVariables,
    ProcessWorker,
    ProcessWorkerResult,
)
from pydantic import Field

from sunbeam_agent.flow_env import FlowEnvError, flow_entrypoint, flow_environment
from sunbeam_agent.hooks import EnvHookRunner
from sunbeam_agent.preparing import Prepared, prepared_environment, watch_for_cancellation
from sunbeam_agent.records import sync_labels, sync_summary
from sunbeam_sync import Cancelled as SyncCancelled
from sunbeam_sync import PrepareRequest, SunbeamSyncError, SyncSettings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun, State

# How often the run's state is read while syncing, to stop a sync the user cancelled.
CANCEL_POLL_SECONDS = float(os.environ.get("SUNBEAM_CANCEL_POLL_SECONDS", "1.0"))
# When this file exists the worker drains: it takes no new runs and stops once idle
# (the container entrypoint creates it on SIGTERM).
DRAIN_FILE_ENV = "SUNBEAM_DRAIN_FILE"


class SunbeamJobConfiguration(ProcessJobConfiguration):
    repo_url: str | None = Field(default=None)
    ref: str = Field(default="main")
    project_dir: str = Field(default=".")
    cache_dir: str | None = Field(default=None)
    sync_only: bool = Field(default=False)


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


def _not_started(identifier: str) -> SunbeamWorkerResult:
    return SunbeamWorkerResult(identifier=identifier, status_code=0)


class SunbeamWorker(ProcessWorker):
    type = "sunbeam"
    job_configuration = SunbeamJobConfiguration
    job_configuration_variables = SunbeamWorkerVariables

    _description = (
        "Runs each flow run on its git ref's own locked environment: checks out the ref, "
        "syncs its uv.lock into a cached virtualenv shared by every ref with the same lock, "
        "then runs the flow there."
    )
    _display_name = "Sunbeam"
    _documentation_url = "https://github.com/sunbeam/sunbeam/blob/main/docs/contracts.md"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._active_runs = 0
        self._drain_stop_sent = False

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        drain_file = os.environ.get(DRAIN_FILE_ENV)
        if not drain_file or not os.path.exists(drain_file):
            return await super().get_and_submit_flow_runs()
        idle = not self._active_runs and not self._submitting_flow_run_ids
        if idle and not self._drain_stop_sent:
            self._drain_stop_sent = True
            self._logger.info("Drained: no flow runs left; stopping")
            # Prefect's own interrupt path stops the worker cleanly once it is idle.
            os.kill(os.getpid(), signal.SIGINT)
        return []

    async def run(
        self,
        flow_run: FlowRun,
        configuration: SunbeamJobConfiguration,  # type: ignore[override]
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> SunbeamWorkerResult:
        if task_status is None:
            task_status = anyio.TASK_STATUS_IGNORED
        self._active_runs += 1
        try:
            return await self._run(flow_run, configuration, task_status)
        finally:
            self._active_runs -= 1

    async def _run(
        self,
        flow_run: FlowRun,
        configuration: SunbeamJobConfiguration,
        task_status: anyio.abc.TaskStatus[int],
    ) -> SunbeamWorkerResult:
        logger = self.get_flow_run_logger(flow_run)
        cancel = threading.Event()
        if not configuration.repo_url:
            message = "Job variable repo_url is not set: set it on the deployment or the run"
            return await self._fail(flow_run, logger, task_status, message)
        try:
            request = PrepareRequest(
                repo=configuration.repo_url,
                ref=configuration.ref,
                project_dir=configuration.project_dir,
                required=["prefect"],
            )
            settings = (
                SyncSettings(cache_dir=configuration.cache_dir)
                if configuration.cache_dir
                else SyncSettings()
            )
        except Exception as exc:  # pydantic validation of the job variables
            return await self._fail(flow_run, logger, task_status, _bad_variables(exc))

        watcher = asyncio.create_task(
            watch_for_cancellation(self.client, flow_run.id, cancel, CANCEL_POLL_SECONDS, logger)
        )
        lease = prepared_environment(request, settings, logger, cancel)
        try:
            try:
                prepared = await lease.__aenter__()
            finally:
                watcher.cancel()
        except SyncCancelled:
            return await self._cancelled(flow_run, logger, task_status, "while syncing")
        except SunbeamSyncError as exc:
            return await self._fail(flow_run, logger, task_status, str(exc))
        except asyncio.CancelledError:
            # The worker is stopping while this run syncs: hand it back for another worker.
            with anyio.CancelScope(shield=True):
                await self._hand_back(flow_run, logger)
            raise
        try:
            return await self._run_prepared(flow_run, configuration, prepared, logger, task_status)
        finally:
            await lease.__aexit__(None, None, None)

    async def _run_prepared(
        self,
        flow_run: FlowRun,
        configuration: SunbeamJobConfiguration,
        prepared: Prepared,
        logger: PrefectLogAdapter,
        task_status: anyio.abc.TaskStatus[int],
    ) -> SunbeamWorkerResult:
        result = prepared.result
        logger.info(sync_summary(result, prepared.seconds))
        await self._record(flow_run, sync_labels(result, prepared.seconds), logger)
        try:
            env = flow_environment(result, os.environ)
        except FlowEnvError as exc:
            return await self._fail(flow_run, logger, task_status, str(exc))

        # The run may have been cancelled between the last poll and the end of the sync.
        fresh = await self.client.read_flow_run(flow_run.id)
        if fresh.state is not None and (fresh.state.is_cancelling() or fresh.state.is_cancelled()):
            return await self._cancelled(fresh, logger, task_status, "before it started")

        if configuration.sync_only:
            message = (
                f"Prewarmed env {result.env_key} for {result.ref} @ {result.commit[:12]}; "
                "flow not run (sync_only)"
            )
            logger.info(message)
            await self._propose(flow_run, Completed(message=message), logger)
            task_status.started(0)
            return _not_started("sync-only")

        deployment = await self.client.read_deployment(flow_run.deployment_id)
        try:
            entrypoint = flow_entrypoint(deployment.entrypoint, result)
        except FlowEnvError as exc:
            return await self._fail(flow_run, logger, task_status, str(exc))
        configuration.env.update(env)
        configuration.env["PREFECT__FLOW_ENTRYPOINT"] = entrypoint
        command = command_to_string([result.python, "-m", "prefect.engine"])
        logger.info("Starting flow %s with %s (cwd %s)", entrypoint, result.python, result.checkout)
        return await self._execute(
            fresh, configuration, command, Path(result.checkout), result.python, task_status
        )

    async def _execute(
        self,
        flow_run: FlowRun,
        configuration: SunbeamJobConfiguration,
        command: str,
        cwd: Path,
        python: str,
        task_status: anyio.abc.TaskStatus[int],
    ) -> SunbeamWorkerResult:
        """ProcessWorker.run's explicit-command path, with the hooks run in the flow's env."""
        hook_runner = EnvHookRunner(
            python=python,
            entrypoint=configuration.env["PREFECT__FLOW_ENTRYPOINT"] or "",
            cwd=cwd,
            env=configuration.env,
        )
        execution: FlowRunExecutionResult | None = None
        async with FlowRunExecutorContext() as ctx:
            starter = EngineCommandStarter(
                command=command,
                cwd=cwd,
                env=configuration.env,
                stream_output=configuration.stream_output,
                control_channel=ctx.control_channel,
            )
            executor = ctx.create_executor(
                flow_run, starter, propose_submitting=False, hook_runner=hook_runner
            )

            async def execute(
                *, task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED
            ) -> None:
                nonlocal execution
                execution = await executor.submit(task_status=task_status)

            async with anyio.create_task_group() as tg:
                handle = await tg.start(execute)
                if handle is None or handle.pid is None:
                    raise RuntimeError("Flow run process has no PID")
                task_status.started(handle.pid)

        if execution is None or execution.status_code is None:
            raise RuntimeError("Failed to start flow run process.")
        return SunbeamWorkerResult(
            status_code=execution.status_code, identifier=str(execution.handle.pid)
        )

    # ----------------------------------------------------------------- run outcomes
    async def _fail(
        self,
        flow_run: FlowRun,
        logger: PrefectLogAdapter,
        task_status: anyio.abc.TaskStatus[int],
        message: str,
    ) -> SunbeamWorkerResult:
        logger.error(message)
        await self._propose(flow_run, Failed(message=message), logger)
        task_status.started(0)  # 0: no process, so BaseWorker records no PID and no crash
        return _not_started("sync-failed")

    async def _cancelled(
        self,
        flow_run: FlowRun,
        logger: PrefectLogAdapter,
        task_status: anyio.abc.TaskStatus[int],
        when: str,
    ) -> SunbeamWorkerResult:
        message = f"Flow run was cancelled {when}."
        logger.info(message)
        with contextlib.suppress(ObjectNotFound):  # deleted meanwhile: nothing to mark
            await self.client.set_flow_run_state(
                flow_run.id, Cancelled(message=message), force=True
            )
        task_status.started(0)
        return _not_started("cancelled")

    async def _hand_back(self, flow_run: FlowRun, logger: PrefectLogAdapter) -> None:
        message = "The worker stopped while syncing; the run is scheduled again"
        logger.warning(message)
        try:
            await self.client.set_flow_run_state(
                flow_run.id, Scheduled(message=message), force=True
            )
        except Exception as exc:  # best effort while shutting down
            logger.warning("Could not hand the run back: %s", exc)

    async def _propose(self, flow_run: FlowRun, state: State, logger: PrefectLogAdapter) -> None:
        try:
            await propose_state(self.client, state, flow_run_id=flow_run.id)
        except Abort as exc:  # the run moved on (e.g. cancelled) meanwhile
            logger.info("Run state not changed to %s: %s", state.type.value, exc)

    async def _record(
        self, flow_run: FlowRun, labels: dict[str, Any], logger: PrefectLogAdapter
    ) -> None:
        try:
            await self.client.update_flow_run_labels(flow_run.id, labels)
        except Exception as exc:  # provenance is best effort; never fail the run over it
            logger.warning("Could not record the sync on the flow run: %s", exc)


def _bad_variables(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = [f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in errors()]
        return "Invalid job variables: " + "; ".join(parts)
    return f"Invalid job variables: {exc}"
