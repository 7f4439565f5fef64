"""`sunbeam up` and `sunbeam demo`: run the whole stack as local processes (no Docker).

`up` starts a Prefect server (SQLite), a MongoDB-compatible server (embedded SecantusDB unless
MONGODB_URI names a real one), the agent worker and the API; creates the work pool and registers
the pipeline deployment against this checkout's git repository; prints the URLs; and stops
everything on Ctrl-C. `demo` does the same on a scratch copy of the repository, then walks the
headline: a run on main, a branch that adds a dependency, and its run on the same agent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from types import FrameType

from sunbeam_contracts.naming import MAIN_FULL_NAME
from sunbeam_stack.demo import run_demo, scratch_remote
from sunbeam_stack.local_stack import LocalStack, StackConfig, pick_port
from sunbeam_stack.options import DemoOptions, StackOptions
from sunbeam_stack.processes import StackError


def _say(message: str) -> None:
    print(message, flush=True)


def checkout_root() -> Path:
    done = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise StackError("not inside a git checkout: run `sunbeam up` in the Sunbeam repository")
    return Path(done.stdout.strip())


def _state_dir(options: StackOptions, root: Path) -> Path:
    return (options.state_dir or root / ".sunbeam").resolve()


def _config(options: StackOptions, root: Path, repo_url: str) -> StackConfig:
    return StackConfig(
        state_dir=_state_dir(options, root),
        repo_url=repo_url,
        project_dir=options.project_dir,
        pool=options.pool,
        prefect_port=pick_port(options.prefect_port, "the Prefect server", _say),
        api_port=pick_port(options.api_port, "the API", _say),
        mongo_port=pick_port(options.mongo_port, "MongoDB", _say),
        mongodb_uri=os.environ.get("MONGODB_URI") or None,
    )


class _StopRequested(Exception):
    pass


def _wait_for_stop(stack: LocalStack) -> None:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop.wait(1.0):
        stack.check_alive()


def _raise_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise _StopRequested


def run(options: StackOptions, demo: DemoOptions | None) -> int:
    """`sunbeam up` (demo None) or `sunbeam demo`; returns the exit code."""
    # Until the stack is up, Ctrl-C interrupts the start-up; everything started is then stopped.
    signal.signal(signal.SIGINT, _raise_on_signal)
    signal.signal(signal.SIGTERM, _raise_on_signal)
    stack: LocalStack | None = None
    try:
        root = checkout_root()
        bare = None
        if demo is not None:
            bare = scratch_remote(root, _state_dir(options, root) / "demo")
            repo_url = options.repo or bare.as_uri()
        else:
            repo_url = options.repo or root.as_uri()
        stack = LocalStack(_config(options, root, repo_url), say=_say)
        stack.start()
        cfg = stack.config
        _say(f"\nPrefect dashboard: {cfg.dashboard_url}")
        _say(f"Sunbeam API:       {cfg.api_url}  (docs: {cfg.api_url}/docs)")
        _say(f"Pipeline repo:     {cfg.repo_url} (deployment {MAIN_FULL_NAME}, pool {cfg.pool})")
        if demo is not None and bare is not None:
            ok = run_demo(stack, bare, demo.package, _say)
            if not demo.keep:
                return 0 if ok else 1
        _say("\nRunning. Press Ctrl-C to stop everything.")
        _wait_for_stop(stack)
        return 0
    except _StopRequested:
        _say("\ninterrupted")
        return 130
    except StackError as exc:
        _say(f"sunbeam: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack is not None:
            stack.stop()
            _say("stopped")
