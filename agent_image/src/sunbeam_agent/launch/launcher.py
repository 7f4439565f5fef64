"""`sunbeam-run`: the flow-run launcher a Prefect worker runs instead of `python -m prefect.engine`.

Any worker type (process, docker, kubernetes, ours) starts it with the run's id in
PREFECT__FLOW_RUN_ID. It resolves the run's ref, prepares that commit's env with the sync
(every line streamed into the run's log), records what it used on the run, gives a deployment
of the run's own ref the flow's parameter schema (flow_schema.py), and then starts Prefect's
engine from the checkout in the env's interpreter. Where the env has a warm interpreter (one
that imported Prefect already, warm.py) the flow's process is forked from it, and the launcher
stays as its stand-in: the worker's signals go on to the flow, the flow's exit comes back as its
own. Otherwise it *replaces itself* with the engine (a cold start), so the process the worker
watches is the flow itself. Either way the env's lease is held until the flow ends.

Signals while syncing (a cancel from the dashboard, `docker stop`, a pod deleted, the worker
stopping): the sync stops cleanly (uv killed, its temporary build removed) and the run ends
Cancelled if it was being cancelled, or goes back to Scheduled for another worker otherwise.
Failures end the run Failed with a one-line message. From its first moment until the flow's
process exits the run has a heartbeat (heartbeat.py): if the infrastructure dies and nobody is
left to report it, the pool's crash watch sets the run Crashed. Start-up is kept small: Prefect is not
imported here (the engine imports it in the env), only the sync core and the standard library.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sunbeam_agent.launch.heartbeat import Heartbeat
from sunbeam_agent.launch.prefect_rest import PrefectAPIError, PrefectREST, concurrently
from sunbeam_agent.launch.run_config import RunConfig, RunConfigError, resolve
from sunbeam_agent.launch.run_log import run_logger
from sunbeam_agent.launch.settings import LaunchSettings, LaunchSettingsError
from sunbeam_agent.launch.warm import WarmRun
from sunbeam_contracts import run_labels
from sunbeam_contracts.processes import restore_stop_signals

if TYPE_CHECKING:
    import logging

    from sunbeam_sync import EnvLease, PrepareResult

HANDED_BACK = "The worker stopped while syncing; the run is scheduled again"


def _say(message: str) -> None:
    print(f"sunbeam-run: {message}", file=sys.stderr, flush=True)


def one_line(message: str) -> str:
    return " / ".join(part.strip() for part in message.splitlines() if part.strip())[:1000]


class Launch:
    """One flow run's way from "submitted" to its engine process."""

    def __init__(
        self,
        api: PrefectREST,
        flow_run_id: str,
        logger: logging.Logger,
        settings: LaunchSettings,
    ) -> None:
        self.api = api
        self.settings = settings
        self.flow_run_id = flow_run_id
        self.logger = logger
        # Started by main(); stopped before the launcher ends the run or hands it back itself.
        self.heartbeat: Heartbeat | None = None
        self.cancel = threading.Event()
        self.signalled = threading.Event()  # a signal arrived: never start the flow after it

    # ---------------------------------------------------------------------- states
    def state_type(self) -> str:
        state = self.api.read_flow_run(self.flow_run_id).get("state") or {}
        return str(state.get("type") or "")

    def cancelling(self) -> bool:
        try:
            return self.state_type() in ("CANCELLING", "CANCELLED")
        except PrefectAPIError:
            return False

    def stop_heartbeat(self) -> None:
        """No heartbeat after the state this launcher sets next (docs: heartbeats.py)."""
        if self.heartbeat is not None:
            self.heartbeat.stop()

    def fail(self, message: str) -> int:
        message = one_line(message)
        self.logger.error(message)
        self.stop_heartbeat()
        self.api.set_state(self.flow_run_id, "FAILED", message)
        return 0  # the run's state says it all; a non-zero exit would make Prefect say "Crashed"

    def stopped(self) -> int:
        """The sync was interrupted: cancelled by the user, or the infrastructure is stopping."""
        if self.signalled.is_set():
            self.logger.info("Stop signal received while syncing: the sync stopped cleanly")
        self.stop_heartbeat()
        if self.cancelling():
            message = "Flow run was cancelled while syncing."
            self.logger.info(message)
            self.api.set_state(self.flow_run_id, "CANCELLED", message, force=True)
            return 0
        self.logger.warning(HANDED_BACK)
        now = datetime.now(UTC).isoformat()
        self.api.request(
            "POST",
            f"/flow_runs/{self.flow_run_id}/set_state",
            {
                "state": {
                    "type": "SCHEDULED",
                    "name": "Scheduled",
                    "message": HANDED_BACK,
                    "state_details": {"scheduled_time": now},
                },
                "force": True,
            },
        )
        return 0  # non-zero would make a process worker mark the handed-back run Crashed

    def watch(self) -> None:
        """Stop the sync as soon as the run is asked to cancel (whatever the worker type)."""
        while not self.cancel.wait(self.settings.cancel_poll_seconds):
            if self.cancelling():
                self.logger.info("Cancellation requested: stopping the sync")
                self.cancel.set()

    # ----------------------------------------------------------------------- steps
    def prepare(self, config: RunConfig) -> EnvLease:
        from sunbeam_sync import PrepareRequest, SyncSettings, prepare

        request = PrepareRequest(
            repo=config.repo_url,
            ref=config.ref,
            project_dir=config.project_dir,
            required=["prefect"],
            commit=config.commit,
        )
        settings = SyncSettings(cache_dir=config.cache_dir) if config.cache_dir else SyncSettings()
        threading.Thread(target=self.watch, name="sunbeam-run-cancel", daemon=True).start()
        return prepare(
            request,
            settings=settings,
            logger=self.logger,
            cancel=self.cancel,
            building=lambda commit, key: self.building(config, commit, key),
        )

    def building(self, config: RunConfig, commit: str, env_key: str) -> None:
        """The env must be built: say so on the run while it builds (in the background)."""
        from sunbeam_agent.launch.records import building_labels

        self.label_later(building_labels(config.ref, commit, env_key))

    def label_later(self, labels: dict[str, str]) -> None:
        """Record labels in the background: the sync goes on meanwhile (best effort)."""

        def send() -> None:
            try:
                self.api.update_labels(self.flow_run_id, labels)
            except PrefectAPIError as exc:
                self.logger.warning("Could not record %s on the run: %s", ", ".join(labels), exc)

        threading.Thread(target=send, name="sunbeam-run-labels", daemon=True).start()

    def record(self, config: RunConfig, prepared: EnvLease, seconds: float) -> bool:
        """Record the sync on the run; True if the run is being cancelled (asked meanwhile)."""
        from sunbeam_agent.launch.records import env_note, sync_labels, sync_summary
        from sunbeam_agent.launch.run_names import run_name, run_tags

        result = prepared.result

        def best_effort(call: Any) -> None:
            try:
                call()
            except PrefectAPIError as exc:  # provenance is best effort; never fail the run over it
                self.logger.warning("Could not record the sync on the flow run: %s", exc)

        self.logger.info(sync_summary(result, seconds))
        if note := env_note(result.env_key, self.previous_env_key(config)):
            self.logger.info(note)
        name = run_name(config.flow_run_name, result.ref, result.commit)
        tags = run_tags(config.tags, result.ref, result.commit)
        # Independent round trips, all at once: labels, name and tags, and the cancel check.
        _labels, _name, cancelling = concurrently(
            lambda: best_effort(
                lambda: self.api.update_labels(self.flow_run_id, sync_labels(result, seconds))
            ),
            lambda: best_effort(
                lambda: self.api.update_flow_run(self.flow_run_id, name=name, tags=tags)
            ),
            self.cancelling,
        )
        return bool(cancelling)

    def name_failed_sync(self, config: RunConfig, commit: str | None) -> None:
        """A run whose sync failed is named and tagged like the rest: `REF@COMMIT8 (name)`, its
        ref and commit in tags and labels; before a commit was known, its ref tag only."""
        from sunbeam_agent.launch.run_names import ref_tags, run_name, run_tags

        calls = [
            lambda: self.api.update_flow_run(
                self.flow_run_id, tags=ref_tags(config.tags, config.ref)
            )
        ]
        if commit:
            name = run_name(config.flow_run_name, config.ref, commit)
            tags = run_tags(config.tags, config.ref, commit)
            labels = {run_labels.REF: config.ref, run_labels.COMMIT: commit}
            calls = [
                lambda: self.api.update_flow_run(self.flow_run_id, name=name, tags=tags),
                lambda: self.api.update_labels(self.flow_run_id, labels),
            ]
        try:
            concurrently(*calls)
        except PrefectAPIError as exc:
            self.logger.warning("Could not name the flow run after its ref and commit: %s", exc)

    def previous_env_key(self, config: RunConfig) -> str | None:
        """The env key the run this one repeats used (best effort: None when unknown)."""
        if config.previous_env_key or not config.rerun_of:
            return config.previous_env_key
        try:
            labels = self.api.read_flow_run(config.rerun_of).get("labels") or {}
        except PrefectAPIError:
            return None
        key = labels.get(run_labels.ENV_KEY)
        return key if isinstance(key, str) else None

    def store_schema(self, config: RunConfig, result: PrepareResult) -> None:
        """Give the run's deployment this commit's parameter schema (best effort, see flow_schema)."""
        from sunbeam_agent.launch.flow_env import FlowEnvError
        from sunbeam_agent.launch.flow_schema import needs_schema, refresh_schema

        if not needs_schema(config, result.commit):
            return
        try:
            entrypoint, env = flow_process(config, result)
        except FlowEnvError:
            return  # a flow run fails with the reason next; a prewarm has no flow to describe
        timeout = self.settings.schema_timeout
        refresh_schema(self.api, config, result, entrypoint, env, self.logger, timeout)

    def launch(self, config: RunConfig) -> int:
        from sunbeam_agent.launch.records import pin_note
        from sunbeam_sync import Cancelled, SunbeamSyncError

        started = time.monotonic()
        pinned = ""
        if config.commit:
            pinned = pin_note(config.ref, config.commit, config.pinned_by, config.rerun_of)
            self.logger.info("This run %s", pinned)
        if config.pinned_by == "retry":  # its labels still say where the last attempt ended
            self.label_later({run_labels.PHASE: run_labels.SYNCING})
        try:
            prepared = self.prepare(config)
        except Cancelled:
            return self.stopped()
        except SunbeamSyncError as exc:
            self.name_failed_sync(config, exc.commit)
            return self.fail(f"{exc} (this run {pinned})" if pinned else str(exc))
        self.cancel.set()  # the sync is done: stop watching
        cancelling = self.record(config, prepared, time.monotonic() - started)
        self.store_schema(config, prepared.result)
        if self.signalled.is_set() or cancelling:
            prepared.release()
            return self.stopped()
        if config.sync_only:
            result = prepared.result
            message = (
                f"Prewarmed env {result.env_key} for {result.ref} @ {result.commit[:12]}; "
                "flow not run (sync_only)"
            )
            self.start_warm(config, prepared)
            self.logger.info(message)
            prepared.release()
            self.stop_heartbeat()
            # The last log batch and the final state are independent: one round trip, not two.
            concurrently(
                lambda: self.api.set_state(self.flow_run_id, "COMPLETED", message),
                *(handler.flush for handler in self.logger.handlers),
            )
            return 0
        return self.exec_engine(config, prepared)

    def exec_engine(self, config: RunConfig, prepared: EnvLease) -> int:
        from sunbeam_agent.launch.flow_env import FlowEnvError, engine_command, flow_environment

        result = prepared.result
        try:
            entrypoint, env = flow_process(config, result)
        except FlowEnvError as exc:
            prepared.release()
            return self.fail(str(exc))
        _write_record(
            self.settings.run_record,
            result,
            entrypoint,
            flow_environment(result, os.environ),
        )
        self.logger.info(
            "Starting flow %s with %s (cwd %s)", entrypoint, result.python, result.checkout
        )
        warm = self.run_warm(prepared, env)
        if warm is not None:
            return warm
        prepared.keep_across_exec()
        if self.heartbeat is not None:
            self.heartbeat.keep_across_exec()  # it beats for the engine until the flow exits
        for handler in list(self.logger.handlers):
            handler.close()
        os.chdir(result.checkout)
        try:
            os.execve(result.python, engine_command(result.python), env)
        except OSError as exc:
            return self.fail(f"Could not start the flow with {result.python}: {exc}")
        return 1  # unreachable: execve does not return

    def warm_run(self, prepared: EnvLease, env: dict[str, str]) -> WarmRun:
        from sunbeam_agent.launch.flow_env import engine_program

        result = prepared.result
        return WarmRun(
            python=result.python,
            env_dir=result.env,
            env=env,
            cwd=result.checkout,
            program=engine_program(),
            lease_fd=prepared.env_lease_fd(),
        )

    def start_warm(self, config: RunConfig, prepared: EnvLease) -> None:
        """A prewarm starts the env's warm interpreter too, so the branch's first run is warm."""
        from sunbeam_agent.launch.flow_env import FlowEnvError
        from sunbeam_agent.launch.warm import start_warm

        try:
            _, env = flow_process(config, prepared.result)
        except FlowEnvError:
            return  # no flow to start: nothing to warm
        start_warm(self.settings.warm, self.warm_run(prepared, env))

    def run_warm(self, prepared: EnvLease, env: dict[str, str]) -> int | None:
        """The flow in this env's warm interpreter (warm.py): its exit, or None to start cold."""
        from sunbeam_agent.launch.warm import WarmError, run_warm, why_cold

        problem = why_cold(self.settings.warm)
        if problem is not None:
            self.logger.warning("Starting the flow cold (no warm interpreter): %s", problem)
        for handler in self.logger.handlers:
            handler.flush()

        def started(pid: int, lender: str | None) -> None:
            if lender is None:
                self.logger.info("Flow process %d forked from the env's warm interpreter", pid)
                return
            self.logger.info(
                "Flow process %d forked from env %s's warm interpreter (this env has none yet; "
                "every file that one imported is this env's too)",
                pid,
                os.path.basename(lender)[:12],
            )

        try:
            return run_warm(
                self.settings.warm,
                self.warm_run(prepared, env),
                started=started,
                stopping=self.signalled.is_set,
                # A new env's interpreter would import while other runs start, and a new lock
                # (a branch's) is often run once: its second run (a hit) starts one.
                start=not prepared.result.built,
            )
        except WarmError as exc:
            _say(str(exc))
            return 1


def flow_process(config: RunConfig, result: PrepareResult) -> tuple[str, dict[str, str]]:
    """The flow's absolute entrypoint and the environment its processes get (FlowEnvError)."""
    from sunbeam_agent.launch.flow_env import flow_entrypoint, flow_environment, without_credentials

    entrypoint = flow_entrypoint(config.entrypoint, result)
    env = without_credentials(
        {**os.environ, **flow_environment(result, os.environ)}
        | {"PREFECT__FLOW_ENTRYPOINT": entrypoint}
    )
    return entrypoint, env


def _write_record(path: str | None, result: Any, entrypoint: str, env: dict[str, str]) -> None:
    """Tell the worker which interpreter and checkout the flow runs in (for its hooks)."""
    if not path:
        return
    record = {
        "python": result.python,
        "entrypoint": entrypoint,
        "checkout": result.checkout,
        "commit": result.commit,
        "env_key": result.env_key,
        "env": env,
    }
    Path(path).write_text(json.dumps(record), encoding="utf-8")


def _preload_sync() -> None:
    # Any failure shows again, reported properly, at the real import in `prepare`.
    with contextlib.suppress(Exception):
        from sunbeam_sync import prepare  # noqa: F401


def main() -> int:
    code = launch_run()
    if code < 0:  # the flow's process was killed by that signal: so is its stand-in
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # no handler to undo
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


def launch_run() -> int:
    # A worker started in the background passes SIGINT and SIGQUIT on ignored; the flow's
    # engine, which this process becomes, must stop on them as in a terminal.
    restore_stop_signals()
    try:
        settings = LaunchSettings.from_environment()
    except LaunchSettingsError as exc:
        _say(str(exc))
        return 2
    flow_run_id = settings.flow_run_id
    if not flow_run_id:
        _say("PREFECT__FLOW_RUN_ID is not set: sunbeam-run is started by a Prefect worker")
        return 2
    try:
        api = PrefectREST.from_environment()
    except PrefectAPIError as exc:
        _say(str(exc))
        return 2
    # The sync core loads while the run and its deployment are read: import time (CPU) and
    # the API's round trips (waiting on a socket) overlap instead of adding up.
    threading.Thread(target=_preload_sync, name="sunbeam-run-preload", daemon=True).start()
    logger, handler = run_logger(api, flow_run_id)
    launch = Launch(api, flow_run_id, logger, settings)

    def on_signal(_signum: int, _frame: object) -> None:
        # No logging here: the handler may interrupt a thread holding the log's lock.
        launch.signalled.set()
        launch.cancel.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        try:
            # First: a run whose infrastructure dies from here on ends Crashed (heartbeat.py).
            launch.heartbeat = Heartbeat.start(flow_run_id, settings.heartbeat_seconds)
            config = resolve(api, api.read_flow_run(flow_run_id), settings.run_variables)
        except RunConfigError as exc:
            return launch.fail(str(exc))
        return launch.launch(config)
    except PrefectAPIError as exc:
        _say(str(exc))
        return 1
    except Exception as exc:  # no tracebacks for users; SUNBEAM_DEBUG=1 shows them
        if settings.debug:
            raise
        try:
            return launch.fail(f"sunbeam-run internal error: {type(exc).__name__}: {exc}")
        except PrefectAPIError:
            _say(f"internal error: {type(exc).__name__}: {exc}")
            return 1
    finally:
        launch.stop_heartbeat()
        handler.close()


if __name__ == "__main__":
    sys.exit(main())
