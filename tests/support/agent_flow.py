"""The test pipeline's code, written into the git repository by the fixtures."""

FLOW = """
import json
import os
import signal
import sys
import time
from pathlib import Path

import prefect
from prefect import flow, get_run_logger

from demo_pipeline import VARIANT


def _report(kind, flow_run, state):
    out = flow_run.parameters.get("out")
    if out:
        Path(f"{out}.{kind}").write_text(json.dumps({
            "python": sys.executable,
            "state": state.name,
            "commit": os.environ.get("SUNBEAM_COMMIT"),
        }))


def on_crashed(flow, flow_run, state):
    _report("crashed", flow_run, state)


def on_cancellation(flow, flow_run, state):
    _report("cancellation", flow_run, state)


def on_failure(flow, flow_run, state):
    _report("failure", flow_run, state)


@flow(
    name="hello",
    on_crashed=[on_crashed],
    on_cancellation=[on_cancellation],
    on_failure=[on_failure],
)
def hello(
    out: str = "", crash: bool = False, fail: bool = False, sleep: float = 0.0, gate: str = ""
):
    try:
        import sunbeam_extra
        extra = sunbeam_extra.__version__
    except ImportError:
        extra = None
    info = {
        "python": sys.executable,
        "prefect": prefect.__version__,
        "extra": extra,
        "variant": VARIANT,
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "sig_ign": next(
            line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("SigIgn:")
        ),
        **{k: os.environ.get(k) for k in (
            "SUNBEAM_REPO", "SUNBEAM_REF", "SUNBEAM_COMMIT", "SUNBEAM_ENV_KEY",
            "SUNBEAM_GIT_TOKEN")},
    }
    get_run_logger().info("hello %s", json.dumps(info))
    if out:
        Path(out).write_text(json.dumps(info))
    if sleep:
        time.sleep(sleep)
    deadline = time.monotonic() + 120
    while gate and not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # held until the test opens the gate (it holds runs to fill workers)
    if crash:
        os.kill(os.getpid(), signal.SIGKILL)
    if fail:
        raise RuntimeError("asked to fail")
    return info
"""

ENTRYPOINT = "flows/hello.py:hello"


def package(variant: str) -> str:
    return f'VARIANT = "{variant}"\n'
