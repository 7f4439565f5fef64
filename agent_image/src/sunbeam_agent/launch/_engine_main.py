"""Run Prefect's engine for the flow run; a flow whose code does not load ends Failed, in one line.

This file is not imported by the agent: its source is passed to the ref's interpreter with
`python -c` (the launcher execs it in place of `python -m prefect.engine`), so it may only use
the standard library and that env's `prefect` (any 3.x), through public names.

Prefect's engine logs a flow that cannot be imported (a syntax error in a stage, an import of a
package the lock lacks) as a traceback and exits 1, which the worker reports as "Crashed:
Process exited with status code: 1". Here the engine runs unchanged, and a log-record factory
keeps the first exception Prefect logs. If the engine then exits non-zero before the
flow started (the run is still Pending), the run is set Failed with one line naming the file,
the line and the fix, that line goes to the run's log, and the process exits 0 (a non-zero exit
would make the worker say Crashed over it).
"""

import logging
import os
import runpy
import sys
import traceback

# Import names that differ from the package to `uv add` (the common ones).
_DISTRIBUTIONS = {
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
    "PIL": "pillow",
    "cv2": "opencv-python",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "jwt": "pyjwt",
    "google.protobuf": "protobuf",
}


class _FirstError:
    """A log-record factory that keeps the first exception Prefect logs at ERROR (the engine's
    load failure). A factory, not a handler: Prefect reconfigures its loggers' handlers when
    the engine starts, while the factory stays."""

    def __init__(self):
        self.error = None
        self.make = logging.getLogRecordFactory()

    def __call__(self, *args, **kwargs):
        record = self.make(*args, **kwargs)
        if (
            self.error is None
            and record.levelno >= logging.ERROR
            and record.name.startswith("prefect")
            and record.exc_info
            and record.exc_info[1] is not None
        ):
            self.error = record.exc_info[1]
        return record


def _shown(path):
    """A file as the developer knows it: relative to the checkout when inside it."""
    path = os.path.abspath(path or "?")
    root = os.getcwd()
    return os.path.relpath(path, root) if path.startswith(root + os.sep) else path


def _where(exc):
    """file:line of the deepest frame inside the checkout, or None (all in installed code)."""
    root = os.getcwd() + os.sep
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if os.path.abspath(f.filename).startswith(root)]
    return f"{_shown(ours[-1].filename)}:{ours[-1].lineno}" if ours else None


def _local(name):
    """Is `name` in a package that exists: the project's own (PYTHONPATH, the checkout) or an
    installed one? Then a missing module is a wrong import, not a missing package."""
    import importlib.util

    top = name.split(".")[0]
    folders = [os.getcwd(), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    for folder in folders:
        if os.path.exists(os.path.join(folder, top)) or os.path.exists(
            os.path.join(folder, top + ".py")
        ):
            return True
    return top != name and importlib.util.find_spec(top) is not None


def describe(exc):
    """One line: what is wrong in the flow's code, where, and what to do."""
    user = getattr(exc, "user_exc", None)  # prefect.exceptions.ScriptError wraps the real one
    exc = user if isinstance(user, BaseException) else exc
    if isinstance(exc, SyntaxError):
        where = f"{_shown(exc.filename)}:{exc.lineno}"
        return f"syntax error in {where}: {exc.msg}: fix it and push"
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        where = _where(exc) or "the flow's entrypoint"
        if _local(exc.name):
            return f"{where}: module {exc.name} does not exist: fix the import and push"
        top = exc.name.split(".")[0]
        package = _DISTRIBUTIONS.get(exc.name) or _DISTRIBUTIONS.get(top) or top
        return (
            f"package {package} is imported ({where}) but not in uv.lock: add it with "
            f"`uv add {package}`, commit uv.lock"
        )
    said = " ".join(str(exc).split()).replace(os.getcwd() + os.sep, "")[:300]
    where = _where(exc)
    if where is None:  # Prefect's loader itself refused: the entrypoint names no flow
        entrypoint = _shown(os.environ.get("PREFECT__FLOW_ENTRYPOINT", "?"))
        return (
            f"the flow's entrypoint {entrypoint} does not load: {said}: fix the flow, or the "
            "deployment's entrypoint"
        )
    what = "import error" if isinstance(exc, ImportError) else type(exc).__name__
    return f"the flow's code does not load: {what} at {where}: {said}: fix it and push"


def _fail(flow_run_id, message):
    """Set the run Failed (unless it started or ended meanwhile); True if done."""
    from prefect.client.orchestration import get_client
    from prefect.logging.loggers import flow_run_logger
    from prefect.states import Failed

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        state = run.state
        if state is not None and (state.is_final() or state.is_running()):
            return False
        flow_run_logger(run).error(message)
        client.set_flow_run_state(flow_run_id, Failed(message=message), force=True)
    return True


def main():
    catcher = _FirstError()
    logging.setLogRecordFactory(catcher)
    sys.argv = ["prefect.engine"]
    try:
        runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        if exit_.code in (0, None) or catcher.error is None:
            raise
        flow_run_id = os.environ.get("PREFECT__FLOW_RUN_ID")
        try:
            done = bool(flow_run_id) and _fail(flow_run_id, describe(catcher.error))
        except Exception as exc:  # the engine's own exit stands; say why ours did not
            print(f"sunbeam: could not mark the run Failed: {exc}", file=sys.stderr)
            raise exit_ from None
        if not done:
            raise
        sys.exit(0)


if __name__ == "__main__":
    main()
