"""The flow run's log in the dashboard, from a process that has not imported Prefect.

Each record goes to stderr (the worker's console, as Prefect's own console handler does) and,
in batches, to the API's `/logs/` endpoint with the run's id, which is exactly what Prefect's
`APILogHandler` sends. A background thread sends every `interval` seconds; `flush()` sends
what is left (before the process is replaced by the engine).
"""

from __future__ import annotations

import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from sunbeam_agent.launch.prefect_rest import PrefectAPIError, PrefectREST

LOGGER_NAME = "prefect.flow_runs.sunbeam"


class RunLogHandler(logging.Handler):
    def __init__(self, api: PrefectREST, flow_run_id: str, interval: float = 0.5) -> None:
        super().__init__()
        self._api = api
        self._flow_run_id = flow_run_id
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()  # one batch in flight at a time keeps lines in order
        self._wake = threading.Event()
        self._closed = False
        self._interval = interval
        self._thread = threading.Thread(target=self._loop, name="sunbeam-run-logs", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        print(f"{record.levelname:<7} | sunbeam-run | {message}", file=sys.stderr, flush=True)
        entry = {
            "name": LOGGER_NAME,
            "level": record.levelno,
            "message": message,
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "flow_run_id": self._flow_run_id,
            "task_run_id": None,
        }
        with self._lock:
            self._pending.append(entry)

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._send()

    def _send(self) -> None:
        with self._send_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                self._api.create_logs(batch)
            except PrefectAPIError as exc:  # the log is best effort; the run goes on
                print(f"sunbeam-run: could not send logs: {exc}", file=sys.stderr, flush=True)

    def flush(self) -> None:
        self._send()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._send()
        super().close()


def run_logger(api: PrefectREST, flow_run_id: str) -> tuple[logging.Logger, RunLogHandler]:
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = RunLogHandler(api, flow_run_id)
    logger.addHandler(handler)
    return logger, handler
