"""`sunbeam up` and `sunbeam demo`: run the whole stack as local processes (no Docker).

`up` starts a Prefect server (SQLite), a MongoDB-compatible server (embedded SecantusDB unless
MONGODB_URI names a real one), the agent worker and the API; creates the work pool and registers
the pipeline deployment against this checkout's git repository; prints the URLs; and stops
everything on Ctrl-C. `demo` does the same on a scratch copy of the repository, then walks the
headline: a run on main, a branch that adds a dependency, and its run on the same agent.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import threading
from pathlib import Path
from types import FrameType

from sunbeam_api.local.demo import run_demo, scratch_remote
from sunbeam_api.local.processes import StackError
from sunbeam_api.local.stack import LocalStack, StackConfig, pick_port


def _say(message: str) -> None:
    print(message, flush=True)


def checkout_root() -> Path:
    done = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise StackError("not inside a git checkout: run `sunbeam up` in the Sunbeam repository")
    return Path(done.stdout.strip())


def _config(args: argparse.Namespace, root: Path, repo_url: str) -> StackConfig:
    state = Path(args.state_dir) if args.state_dir else root / ".sunbeam"
    return StackConfig(
        state_dir=state.resolve(),
        repo_url=repo_url,
        project_dir=args.project_dir,
        pool=args.pool,
        prefect_port=pick_port(args.prefect_port, "the Prefect server", _say),
        api_port=pick_port(args.api_port, "the API", _say),
        mongo_port=pick_port(args.mongo_port, "MongoDB", _say),
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


def _run(args: argparse.Namespace, demo: bool) -> int:
    # Until the stack is up, Ctrl-C interrupts the start-up; everything started is then stopped.
    signal.signal(signal.SIGINT, _raise_on_signal)
    signal.signal(signal.SIGTERM, _raise_on_signal)
    stack: LocalStack | None = None
    try:
        root = checkout_root()
        if demo:
            state = Path(args.state_dir) if args.state_dir else root / ".sunbeam"
            bare = scratch_remote(root, state.resolve() / "demo")
            repo_url = args.repo or bare.as_uri()
        else:
            bare = None
            repo_url = args.repo or root.as_uri()
        stack = LocalStack(_config(args, root, repo_url), say=_say)
        stack.start()
        cfg = stack.config
        _say(f"\nPrefect dashboard: {cfg.dashboard_url}")
        _say(f"Sunbeam API:       {cfg.api_url}  (docs: {cfg.api_url}/docs)")
        _say(f"Pipeline repo:     {cfg.repo_url} (deployment run-sunbeam/main, pool {cfg.pool})")
        if demo:
            assert bare is not None
            ok = run_demo(stack, bare, args.package, _say)
            if not args.keep:
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


def up(args: argparse.Namespace) -> int:
    return _run(args, demo=False)


def demo(args: argparse.Namespace) -> int:
    return _run(args, demo=True)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", help="pipeline repository URL (default: this checkout)")
    parser.add_argument("--project-dir", default="pipeline", help="pipeline folder in the repo")
    parser.add_argument("--pool", default=os.environ.get("SUNBEAM_WORK_POOL", "sunbeam"))
    parser.add_argument("--prefect-port", type=int, default=4200)
    parser.add_argument("--api-port", type=int, default=8080)
    parser.add_argument("--mongo-port", type=int, default=27017)
    parser.add_argument("--state-dir", help="logs, databases and scratch files (default .sunbeam/)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p_up = sub.add_parser("up", help="run the whole stack locally (no Docker); Ctrl-C stops it")
    _common(p_up)
    p_up.set_defaults(func=up)
    p_demo = sub.add_parser(
        "demo", help="run the stack and show a dependency change reaching a running agent"
    )
    _common(p_demo)
    p_demo.add_argument(
        "--package", default="tabulate", help="a dependency the pipeline lacks, for the demo branch"
    )
    p_demo.add_argument("--keep", action="store_true", help="keep the stack running afterwards")
    p_demo.set_defaults(func=demo)
