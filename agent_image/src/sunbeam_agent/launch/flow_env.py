"""How a prepared ref becomes a flow-run process: its environment and its entrypoint."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sunbeam_agent.errors import AgentError
from sunbeam_sync import PrepareResult, without_credentials

__all__ = [
    "FlowEnvError",
    "engine_command",
    "engine_program",
    "flow_environment",
    "prefect_version",
    "without_credentials",
]


class FlowEnvError(AgentError):
    """The prepared env cannot run a Prefect flow; the message says what to fix."""


def prefect_version(env_dir: Path) -> str | None:
    """The `prefect` version installed in a virtualenv, read from its metadata (no subprocess)."""
    for dist_info in env_dir.glob("lib/python*/site-packages/prefect-*.dist-info"):
        return dist_info.name.removeprefix("prefect-").removesuffix(".dist-info")
    return None


def flow_environment(result: PrepareResult, base: Mapping[str, str]) -> dict[str, str]:
    """Variables the flow process gets on top of the worker's, for a prepared ref."""
    env_dir = Path(result.env)
    if prefect_version(env_dir) is None:
        raise FlowEnvError(
            f"The lock of {result.ref} ({result.commit[:12]}) does not install prefect: "
            "add prefect to the pipeline's dependencies, run `uv lock` and push"
        )
    bin_dir = str(Path(result.python).parent)
    return {
        "VIRTUAL_ENV": str(env_dir),
        "PATH": os.pathsep.join(p for p in (bin_dir, base.get("PATH", "")) if p),
        # The project's own code and the local packages its env needs (workspace members,
        # path dependencies), from this commit's checkout; never the worker's PYTHONPATH.
        "PYTHONPATH": os.pathsep.join(str(p) for p in result.pythonpath),
        "SUNBEAM_REPO": result.repo,
        "SUNBEAM_REF": result.ref,
        "SUNBEAM_COMMIT": result.commit,
        "SUNBEAM_ENV_KEY": result.env_key,
    }


def engine_command(python: str) -> list[str]:
    """Prefect's engine, run by `_engine_main.py` in the env's interpreter (`python -c`, as
    `python -m prefect.engine` would: the checkout first on sys.path): a flow whose code does
    not load ends Failed with one line instead of Crashed."""
    return [python, "-c", engine_program()]


def engine_program() -> str:
    """The source of `_engine_main.py` (a warm interpreter runs it in its forked child)."""
    from importlib import resources

    program = resources.files("sunbeam_agent.launch").joinpath("_engine_main.py")
    return program.read_text(encoding="utf-8")


def flow_entrypoint(entrypoint: str | None, result: PrepareResult) -> str:
    """The deployment's entrypoint, with a file path made absolute inside the project dir.

    `path/to/flow.py:func` is relative to the project dir (`result.checkout` is the project
    folder inside the commit's checkout); `package.module.func` is imported through
    PYTHONPATH and left alone.
    """
    if not entrypoint:
        raise FlowEnvError("The deployment has no entrypoint")
    path, sep, name = entrypoint.rpartition(":")
    if not sep or not path.endswith(".py"):
        return entrypoint
    file = Path(path)
    if not file.is_absolute():
        file = Path(result.checkout) / file
    if not file.is_file():
        raise FlowEnvError(
            f"the flow's entrypoint {path} does not exist at {result.ref} "
            f"({result.commit[:12]}): restore the file, or fix the deployment's entrypoint"
        )
    return f"{file.resolve()}:{name}"
