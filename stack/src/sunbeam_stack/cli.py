"""The `sunbeam` command (typer): `up`, `demo`, `env`, `deploy` and `prewarm`.

Each subcommand imports what it runs (Prefect, FastAPI, the stack) inside its body, so
`sunbeam --help` stays instant.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from sunbeam_agent.pools.cli import app as pool_app
from sunbeam_stack.options import (
    DEFAULT_API_PORT,
    DEFAULT_MONGO_PORT,
    DEFAULT_PREFECT_PORT,
    DemoOptions,
    StackOptions,
)

app = typer.Typer(
    name="sunbeam",
    help="Sunbeam platform commands: run the stack locally, show the demo, register deployments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
# `sunbeam pool create NAME --type process|docker|kubernetes` (docs/scale-out.md)
app.add_typer(pool_app, name="pool")

Repo = Annotated[str | None, typer.Option(help="pipeline repository URL (default: this checkout)")]
ProjectDir = Annotated[str, typer.Option(help="pipeline folder in the repo")]
Pool = Annotated[str, typer.Option(help="work pool (default $SUNBEAM_WORK_POOL or 'sunbeam')")]
PrefectPort = Annotated[int, typer.Option(help="Prefect server port")]
ApiPort = Annotated[int, typer.Option(help="API port")]
MongoPort = Annotated[int, typer.Option(help="embedded MongoDB port")]
StateDir = Annotated[
    Path | None,
    typer.Option(help="logs, databases, PIDs, API key (default .sunbeam/; demo: .sunbeam/demo/)"),
]


def _default_pool() -> str:
    from sunbeam_stack.settings import StackSettings

    return StackSettings().work_pool


@app.command()
def up(
    repo: Repo = None,
    project_dir: ProjectDir = "pipeline",
    pool: Pool = "",
    prefect_port: PrefectPort = DEFAULT_PREFECT_PORT,
    api_port: ApiPort = DEFAULT_API_PORT,
    mongo_port: MongoPort = DEFAULT_MONGO_PORT,
    state_dir: StateDir = None,
) -> int:
    """Run the whole stack locally (no Docker); Ctrl-C stops it.

    Logs, databases and PIDs go to the state folder (default .sunbeam/). Unless SUNBEAM_API_KEY
    is set, a local API key is created there (.sunbeam/api-key, mode 0600) and given to the API;
    `eval "$(uv run sunbeam env)"` exports it with the URLs.
    """
    from sunbeam_stack.up import run

    options = StackOptions(
        repo, project_dir, pool or _default_pool(), prefect_port, api_port, mongo_port, state_dir
    )
    return run(options, demo=None)


@app.command()
def demo(
    repo: Repo = None,
    project_dir: ProjectDir = "pipeline",
    pool: Pool = "",
    prefect_port: PrefectPort = DEFAULT_PREFECT_PORT,
    api_port: ApiPort = DEFAULT_API_PORT,
    mongo_port: MongoPort = DEFAULT_MONGO_PORT,
    state_dir: StateDir = None,
    package: Annotated[
        str, typer.Option(help="a dependency the pipeline lacks, for the demo branch")
    ] = "tabulate",
    keep: Annotated[bool, typer.Option(help="keep the stack running afterwards")] = False,
) -> int:
    """Run the stack and show a dependency change reaching a running agent.

    It runs in its own state folder (default .sunbeam/demo/: its own Prefect database and MongoDB
    data), so your `sunbeam up` stack, its runs and results are left as they were.
    """
    from sunbeam_stack.up import run

    options = StackOptions(
        repo, project_dir, pool or _default_pool(), prefect_port, api_port, mongo_port, state_dir
    )
    return run(options, demo=DemoOptions(package, keep))


@app.command()
def env(state_dir: StateDir = None) -> int:
    """Print the running stack's URLs and API key as shell exports: eval "$(uv run sunbeam env)"."""
    from sunbeam_stack.checkout import checkout_root, default_state_dir
    from sunbeam_stack.errors import StackError
    from sunbeam_stack.local.shell_env import exports

    try:
        print(exports((state_dir or default_state_dir(checkout_root())).resolve()))
    except StackError as exc:
        print(f"sunbeam env: {exc}", file=sys.stderr)
        return 1
    return 0


@app.command()
def deploy(
    repo: Annotated[
        str | None,
        typer.Option(
            help="pipeline repository URL (default $SUNBEAM_PIPELINE_REPO, else this checkout)"
        ),
    ] = None,
    pool: Annotated[
        str | None, typer.Option(help="work pool (default $SUNBEAM_WORK_POOL or 'sunbeam')")
    ] = None,
    ref: Annotated[str, typer.Option(help="git ref")] = "main",
    cron: Annotated[
        str | None, typer.Option(help="cron schedule in UTC (main defaults to '0 2 * * *')")
    ] = None,
    project_dir: ProjectDir = "pipeline",
) -> int:
    """Register (or update) the pipeline deployment for a ref."""
    from sunbeam_stack.orchestration.deploy import register

    try:
        print(register(repo, ref, pool, project_dir, cron))
    except Exception as exc:
        return _report("deploy", exc)
    return 0


@app.command()
def prewarm(
    ref: Annotated[str, typer.Argument(help="branch, tag or commit to prewarm")],
    api_url: Annotated[
        str | None,
        typer.Option(
            help="the Sunbeam API (default $SUNBEAM_API_URL, else the `sunbeam up` stack)"
        ),
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(
            help="wait up to this many seconds for the prewarm runs and say how each ended"
        ),
    ] = None,
    state_dir: StateDir = None,
) -> int:
    """Build a ref's environment on every live host now, before anyone runs it.

    For stacks without the GitHub push webhook: run it from a git hook after each commit
    (docs/scale-out.md). The key is $SUNBEAM_API_KEY, else the local stack's.
    """
    from sunbeam_stack.checkout import default_state_dir, find_checkout
    from sunbeam_stack.errors import StackError
    from sunbeam_stack.orchestration.prewarm import prewarm as run_prewarm

    state = state_dir or default_state_dir(find_checkout() or Path.cwd())
    try:
        return run_prewarm(
            ref, api_url, state.resolve(), lambda line: print(line, flush=True), wait
        )
    except StackError as exc:
        print(f"sunbeam prewarm: {exc}", file=sys.stderr)
        return 2


def _report(command: str, exc: Exception) -> int:
    """Print a one-line message for errors the user can act on; re-raise bugs."""
    import httpx

    from sunbeam_api.errors import SunbeamApiError

    if isinstance(exc, SunbeamApiError):
        message, code = exc.message, 2
    elif isinstance(exc, httpx.HTTPError):
        message, code = f"Prefect is unreachable or refused the request ({type(exc).__name__})", 1
    else:
        raise exc
    print(f"sunbeam {command}: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    try:
        result = app(
            args=list(argv) if argv is not None else None,
            prog_name="sunbeam",
            standalone_mode=False,
        )
    except typer.TyperException as exc:
        # A mistyped command line (typer's usage errors; since typer 0.29 they are no longer
        # click's, which this caught before and so let through as tracebacks).
        message = exc.format_message()
        if message.startswith("Usage:"):  # a group given no command: its help is the answer
            print(message, file=sys.stderr)
        else:
            print(f"sunbeam: {message} (see 'sunbeam --help')", file=sys.stderr)
        return exc.exit_code
    except typer.Abort:
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
