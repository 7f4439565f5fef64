"""Flow state hooks that Prefect runs outside the flow process, run in the ref's env.

Prefect's stock hook runner loads the flow in the worker's interpreter, which cannot import
a pipeline whose dependencies live only in the ref's env (and would run the wrong code if it
could). `on_failure` runs inside the engine already; `on_crashed` and `on_cancellation` are
run by the worker after the process is gone, so they come through here.
"""

from __future__ import annotations

import logging
import os
import tempfile
from importlib import resources
from pathlib import Path

from prefect.client.schemas.objects import FlowRun, State
from prefect.logging.loggers import flow_run_logger
from prefect.settings import get_current_settings
from prefect.utilities.processutils import run_process, sanitize_subprocess_env

from sunbeam_agent.launch.flow_env import without_credentials

_HOOK_PROGRAM = (
    resources.files("sunbeam_agent.host").joinpath("_hook_main.py").read_text(encoding="utf-8")
)


# Prefect's process worker also tries a crashed or cancelled run's hooks in *its own*
# interpreter, which cannot import the pipeline, and logs a warning with a traceback into the
# run's log (3.8 also announces the attempt and a download "from storage at None"). The hooks
# really run in the ref's env (EnvHookRunner), so those lines would only mislead.
_WORKER_HOOK_MISS = "Runner failed to retrieve flow to execute on_"
_WORKER_HOOK_NOISE = ("Loading flow to check for on_", "Downloading flow code from storage at None")
# 3.9 logs through the flow-run logger itself, 3.8 through its "runner" child (filters on a
# logger do not apply to its children's records).
_FLOW_RUN_LOGGERS = ("prefect.flow_runs", "prefect.flow_runs.runner")


class WorkerHookNotice(logging.Filter):
    """Turns Prefect's worker-side hook attempt into one line saying where the hooks run."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(_WORKER_HOOK_NOISE):
            return False
        if message.startswith(_WORKER_HOOK_MISS):
            hook = message[len(_WORKER_HOOK_MISS) :].split(" ", 1)[0]
            record.msg, record.args = "The on_%s hooks run in the ref's environment", (hook,)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def install_worker_hook_notice() -> None:
    """Once per process, on the loggers Prefect's flow-run loggers write through."""
    for name in _FLOW_RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, WorkerHookNotice) for f in logger.filters):
            logger.addFilter(WorkerHookNotice())


class EnvHookRunner:
    """Implements Prefect's `FlowRunHookRunner` protocol with a subprocess in the flow's env."""

    def __init__(
        self, *, python: str, entrypoint: str, cwd: Path, env: dict[str, str | None]
    ) -> None:
        self._python = python
        self._entrypoint = entrypoint
        self._cwd = cwd
        self._env = env

    async def run_cancellation_hooks(self, flow_run: FlowRun, state: State) -> None:
        if state.is_cancelling():
            await self._run("cancellation", flow_run, state)

    async def run_crashed_hooks(self, flow_run: FlowRun, state: State) -> None:
        if state.is_crashed():
            await self._run("crashed", flow_run, state)

    async def _run(self, hook_type: str, flow_run: FlowRun, state: State) -> None:
        logger = flow_run_logger(flow_run)
        with tempfile.TemporaryDirectory(prefix="sunbeam-hook-") as tmp:
            flow_run_path = Path(tmp, "flow_run.json")
            state_path = Path(tmp, "state.json")
            flow_run_path.write_text(flow_run.model_dump_json(), encoding="utf-8")
            state_path.write_text(state.model_dump_json(), encoding="utf-8")
            env = {
                **os.environ,
                **self._env,
                # Same precedence as Prefect's engine starter: the worker's settings win.
                **get_current_settings().to_environment_variables(exclude_unset=True),
                "PREFECT__FLOW_RUN_ID": str(flow_run.id),
            }
            command = [
                self._python,
                "-c",
                _HOOK_PROGRAM,
                hook_type,
                self._entrypoint,
                str(flow_run_path),
                str(state_path),
            ]
            try:
                process = await run_process(
                    command,
                    cwd=self._cwd,
                    env=sanitize_subprocess_env(without_credentials(env)),
                    stream_output=True,
                )
            except Exception:
                logger.warning("Could not start the on_%s hooks", hook_type, exc_info=True)
                return
            if process.returncode != 0:
                logger.warning(
                    "The on_%s hooks process exited with status %s (see the worker's output)",
                    hook_type,
                    process.returncode,
                )
