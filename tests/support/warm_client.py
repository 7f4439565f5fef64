"""A launcher's warm start alone, as a process (`python -m tests.support.warm_client SPEC`).

SPEC is JSON: folder, count, idle_seconds, python, env_dir, cwd, program, env, cold_exec, start. The
process does what `sunbeam-run` does with a flow: runs `program` through `run_warm` with its own
stdin, stdout and stderr, then exits with the flow's code, or is killed by the flow's signal.
When no warm interpreter took the run: with `cold_exec` it becomes the program (a cold start,
as the launcher's execve), else it exits 99.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from sunbeam_agent.launch.warm import WarmRun, WarmSettings, run_warm

COLD = 99


def main() -> int:
    spec = json.loads(sys.argv[1])
    settings = WarmSettings(
        count=spec["count"], idle_seconds=spec["idle_seconds"], folder=Path(spec["folder"])
    )
    run = WarmRun(
        python=spec["python"],
        env_dir=spec["env_dir"],
        env=spec["env"],
        cwd=spec["cwd"],
        program=spec["program"],
        lease_fd=None,
    )
    start = spec.get("start", True)
    code = run_warm(
        settings, run, started=lambda _pid, _lender: None, stopping=lambda: False, start=start
    )
    if code is None and spec.get("cold_exec"):  # as the launcher does: become the program
        os.chdir(spec["cwd"])
        os.execve(spec["python"], [spec["python"], "-c", spec["program"]], spec["env"])
    if code is None:
        return COLD
    if code < 0:
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # no handler to undo
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main())
