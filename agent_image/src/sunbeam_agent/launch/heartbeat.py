"""The run's heartbeat: a small process beside `sunbeam-run` that tells Prefect the run's
infrastructure is alive (sunbeam_contracts.heartbeats explains the whole mechanism).

`sunbeam-run` starts it before the sync, so a run killed while its env builds ends Crashed too,
and it outlives the launcher's `execve` into the engine: it beats until the flow's process is
gone. It stops at once when the launcher closes its end of a pipe (before the launcher itself
ends the run or hands it back, so no heartbeat follows that state), when every holder of that
end has exited (the flow's process is gone, however it died), or when its parent changed (the
flow's process died while a process it forked kept the pipe open). SIGINT and SIGTERM are the
flow's to handle: the heartbeat ignores them and stops when the flow's process does. Killing the
process group, the container or the pod kills it with the run, and the automation then sets the
run Crashed.

Standard library only, like the launcher: it is started once per flow run.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sunbeam_agent.launch.prefect_rest import PrefectAPIError, PrefectREST
from sunbeam_contracts.heartbeats import HEARTBEAT_EVENT

STOP_WAIT_SECONDS = 1.0  # how long stop() waits for a heartbeat being sent to finish


class Heartbeat:
    """The launcher's handle on its heartbeat process."""

    def __init__(self, process: subprocess.Popen[bytes], stop_fd: int) -> None:
        self.process = process
        self.stop_fd: int | None = stop_fd

    @classmethod
    def start(cls, flow_run_id: str, every: float) -> Heartbeat:
        """Start beating for the run, every `every` seconds."""
        read_fd, write_fd = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, flow_run_id, repr(every), str(read_fd)],
                pass_fds=(read_fd,),
                stdin=subprocess.DEVNULL,
                # Never the worker's pipes: a worker reading the flow's output must see it end
                # when the flow's process ends.
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        return cls(process, write_fd)

    def keep_across_exec(self) -> None:
        """The engine that replaces the launcher keeps the pipe: the heartbeat beats on."""
        if self.stop_fd is not None:
            os.set_inheritable(self.stop_fd, True)

    def stop(self) -> None:
        """No heartbeat after this returns (unless one is stuck sending for STOP_WAIT_SECONDS)."""
        if self.stop_fd is None:
            return
        os.close(self.stop_fd)
        self.stop_fd = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_WAIT_SECONDS)


def heartbeat_event(flow_run_id: str, work_pool_id: str) -> dict[str, Any]:
    """Prefect's event for the run, with its pool related (the pool's automation matches it)."""
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": HEARTBEAT_EVENT,
        "resource": {"prefect.resource.id": f"prefect.flow-run.{flow_run_id}"},
        "related": [
            {
                "prefect.resource.id": f"prefect.work-pool.{work_pool_id}",
                "prefect.resource.role": "work-pool",
            }
        ],
        "payload": {},
    }


def beat_until_stopped(api: PrefectREST, flow_run_id: str, seconds: float, stop_fd: int) -> None:
    parent = os.getppid()
    work_pool_id: str | None = None
    next_beat = time.monotonic()
    while True:
        if os.getppid() != parent:
            return  # the flow's process died; what it forked holds the pipe
        wait = min(1.0, max(0.0, next_beat - time.monotonic()))
        if select.select([stop_fd], [], [], wait)[0]:
            return  # closed (or written to): stop
        if time.monotonic() < next_beat:
            continue
        next_beat = max(next_beat + seconds, time.monotonic())
        try:
            if work_pool_id is None:
                run = api.request_once("GET", f"/flow_runs/{flow_run_id}")
                work_pool_id = str((run or {}).get("work_pool_id") or "") or None
                if work_pool_id is None:
                    return  # a run outside any work pool: no automation watches it
            api.request_once("POST", "/events", [heartbeat_event(flow_run_id, work_pool_id)])
        except PrefectAPIError:
            continue  # the next heartbeat may get through; a window holds several


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    flow_run_id, seconds, stop_fd = argv[1], float(argv[2]), int(argv[3])
    try:
        api = PrefectREST.from_environment()
    except PrefectAPIError:
        return 2
    api.timeout = min(api.timeout, max(seconds, 2.0))  # never stuck beyond the next beat
    beat_until_stopped(api, flow_run_id, seconds, stop_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
