"""`sunbeam up` and `sunbeam demo`: run the whole stack as local processes (no Docker).

`up` starts a Prefect server (SQLite), a MongoDB-compatible server (embedded SecantusDB unless
MONGODB_URI names a real one), the agent worker and the API; creates the work pool and registers
the pipeline deployment against this checkout's git repository; prints the URLs; and stops
everything on Ctrl-C (SIGINT), SIGTERM or SIGHUP (not SIGHUP under `nohup`), however it was
started (`nohup … &` included). `demo` does the same in its own state folder on
a scratch copy of the repository, then walks the headline: a run on main, a branch that adds a
dependency, and its run on the same agent.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from sunbeam_contracts.naming import MAIN_FULL_NAME
from sunbeam_contracts.processes import restore_stop_signals, stop_groups
from sunbeam_stack.checkout import checkout_root, default_state_dir
from sunbeam_stack.demo.run import run_demo, scratch_remote
from sunbeam_stack.errors import StackError
from sunbeam_stack.local import state
from sunbeam_stack.local.apikey import ensure_api_key
from sunbeam_stack.local.console import Console
from sunbeam_stack.local.ports import pick_port
from sunbeam_stack.local.stack import LocalStack, StackConfig
from sunbeam_stack.options import DemoOptions, StackOptions
from sunbeam_stack.settings import StackSettings

STOP_SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
Say = Callable[[str], None]


class _StopRequested(Exception):
    pass


def _raise_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise _StopRequested


def _on_stop_signals(handler: Callable[[int, FrameType | None], object] | int) -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)


def clear_leftovers(state_dir: Path, say: Say) -> None:
    """Stop a stack whose `sunbeam up` was killed; refuse to start beside a live one."""
    old = state.StackState.read(state_dir)
    if old is None:
        return
    if old.up.alive() and old.up.pid != os.getpid():
        raise StackError(
            f"a `sunbeam up` (pid {old.up.pid}) is already running with state folder {state_dir}: "
            f"stop it (Ctrl-C in its terminal, or `kill {old.up.pid}`) or pass another --state-dir"
        )
    live = old.live_children()
    if live:
        names = ", ".join(f"{c.name} (pid {c.pid})" for c in live)
        say(
            f"found a stack left by a `sunbeam up` that was killed (pid {old.up.pid}): stopping {names}"
        )
        stop_groups([c.pid for c in live], grace=30.0)
        still = [str(c.pid) for c in live if c.alive()]
        if still:
            raise StackError(
                f"could not stop pids {' '.join(still)}: stop them by hand, then retry"
            )
        say("✓ stopped the stack left behind")
    state.clear(state_dir)


def _api_key(state_dir: Path, say: Say) -> tuple[str, Path | None]:
    given = StackSettings().api_key
    if given is not None:
        say("API key: SUNBEAM_API_KEY from the environment")
        return given.get_secret_value().strip(), None
    key, path, created = ensure_api_key(state_dir)
    say(f"API key: {'created' if created else 'kept'} in {path} (mode 0600; never printed)")
    return key, path


def _config(options: StackOptions, state_dir: Path, repo_url: str, say: Say) -> StackConfig:
    key, key_file = _api_key(state_dir, say)
    return StackConfig(
        state_dir=state_dir,
        repo_url=repo_url,
        project_dir=options.project_dir,
        pool=options.pool,
        prefect_port=pick_port(options.prefect_port, "the Prefect server", say),
        api_port=pick_port(options.api_port, "the API", say),
        mongo_port=pick_port(options.mongo_port, "MongoDB", say),
        mongodb_uri=StackSettings().mongodb_uri,
        api_key=key,
        api_key_file=key_file,
    )


def _banner(cfg: StackConfig, default_state: bool, say: Say) -> None:
    env_cmd = "uv run sunbeam env" + ("" if default_state else f" --state-dir {cfg.state_dir}")
    say(f"\nPrefect dashboard: {cfg.dashboard_url}")
    say(f"Results browser:   {cfg.api_url}/ui  (refs and their envs: {cfg.api_url}/ui/refs)")
    say(f"Sunbeam API:       {cfg.api_url}  (docs: {cfg.api_url}/docs)")
    say(f"Pipeline repo:     {cfg.repo_url} (deployment {MAIN_FULL_NAME}, pool {cfg.pool})")
    where = cfg.api_key_file or "SUNBEAM_API_KEY"
    say(f"API key:           in {where}; send it as 'Authorization: Bearer <key>'")
    say(
        f'In a shell:        eval "$({env_cmd})"  (PREFECT_API_URL, SUNBEAM_API_URL, SUNBEAM_API_KEY)'
    )


def _ignore_stop_signals() -> None:
    # A signal landing between `finally:` and the first line of it must not skip the stop.
    while True:
        try:
            _on_stop_signals(signal.SIG_IGN)
            return
        except _StopRequested:
            continue


def _wait_for_stop(stack: LocalStack) -> None:
    stop = threading.Event()
    _on_stop_signals(lambda _signum, _frame: stop.set())
    while not stop.wait(1.0):
        stack.check_alive()


def _take_stop_signals() -> None:
    """Stop on SIGINT and SIGTERM however `up` was started, and on SIGHUP unless ignored.

    A background start (`nohup … &`, a scheduler) ignores SIGINT and SIGQUIT: they get their
    defaults back, here and so in every service started below. A SIGHUP ignored at start is
    `nohup`'s wish to outlive the terminal, and is kept.
    """
    restore_stop_signals()
    if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN and signal.SIGHUP in STOP_SIGNALS:
        STOP_SIGNALS.remove(signal.SIGHUP)


def run(options: StackOptions, demo: DemoOptions | None) -> int:
    """`sunbeam up` (demo None) or `sunbeam demo`; returns the exit code."""
    console = Console()
    say = console.say
    _take_stop_signals()
    # Until the stack is up, a stop signal interrupts the start-up; everything started is stopped.
    _on_stop_signals(_raise_on_signal)
    stack: LocalStack | None = None
    try:
        root = checkout_root()
        state_dir = (options.state_dir or default_state_dir(root, demo is not None)).resolve()
        (state_dir / "logs").mkdir(parents=True, exist_ok=True)
        console.log = state_dir / "logs" / "up.log"
        clear_leftovers(state_dir, say)
        bare = scratch_remote(root, state_dir / "scratch") if demo is not None else None
        repo_url = options.repo or (bare or root).as_uri()
        stack = LocalStack(_config(options, state_dir, repo_url, say), say=say)
        stack.start()
        _banner(stack.config, options.state_dir is None and demo is None, say)
        if demo is not None and bare is not None:
            ok = run_demo(stack, bare, demo.package, say, root)
            if not demo.keep:
                return 0 if ok else 1
        say("\nRunning. Press Ctrl-C to stop everything.")
        _wait_for_stop(stack)
        return 0
    except _StopRequested:
        say("\ninterrupted")
        return 130
    except StackError as exc:
        say(f"sunbeam: {exc}")
        return 1
    finally:
        _ignore_stop_signals()
        if stack is not None:
            stack.stop()
            state.clear(stack.config.state_dir)
            say("stopped")
