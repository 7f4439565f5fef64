"""`sunbeam pool create NAME --type process|docker|kubernetes` (a typer sub-app).

The platform CLI mounts `app` as `sunbeam pool`; until then it is the `sunbeam-pool` script.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from sunbeam_agent.pools.crash_watch import (
    CrashWatchError,
    crash_after_seconds,
    crash_watch_note,
    ensure_pool_crash_watch,
)
from sunbeam_agent.pools.templates import PoolError, PoolType, create_or_update_pool, template_with

app = typer.Typer(help="Work pools whose runs go through sunbeam-run.", no_args_is_help=True)


@app.callback()
def _pool() -> None:
    """Work pools whose runs go through sunbeam-run."""


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="work pool name")],
    pool_type: Annotated[
        PoolType, typer.Option("--type", help="the worker type")
    ] = PoolType.PROCESS,
    repo_url: Annotated[str | None, typer.Option(help="default repo_url")] = None,
    ref: Annotated[str | None, typer.Option(help="default ref")] = None,
    project_dir: Annotated[str | None, typer.Option(help="default project_dir")] = None,
    cache_dir: Annotated[str | None, typer.Option(help="default cache_dir")] = None,
    image: Annotated[str | None, typer.Option(help="docker/kubernetes: the agent image")] = None,
    volume: Annotated[
        str | None, typer.Option(help="docker: cache volume as NAME:/cache (default sunbeam-cache)")
    ] = None,
    show: Annotated[bool, typer.Option(help="print the template, change nothing")] = False,
) -> None:
    """Create NAME, or replace its base job template, so its runs go through sunbeam-run."""
    defaults: dict[str, object] = {
        "repo_url": repo_url,
        "ref": ref,
        "project_dir": project_dir,
        "cache_dir": cache_dir,
    }
    if image is not None:
        defaults["image"] = image
    if volume is not None:
        if pool_type is not PoolType.DOCKER:
            _fail("--volume applies to --type docker only")
        if ":" not in volume:
            _fail(f"--volume {volume!r} must be NAME:/PATH, e.g. sunbeam-cache:/cache")
        defaults["volumes"] = [volume]
    try:
        template = template_with(pool_type, **defaults)
        if show:
            typer.echo(json.dumps(template, indent=2))
            return
        window = crash_after_seconds()
        done = asyncio.run(create_or_update_pool(name, pool_type, template))
        watched = asyncio.run(ensure_pool_crash_watch(name, window))
    except (PoolError, CrashWatchError) as exc:
        _fail(str(exc))
    except Exception as exc:  # the API is down, refused the template...: one line, no traceback
        _fail(f"could not create work pool {name!r}: {type(exc).__name__}: {exc}")
    typer.echo(
        f"{done} work pool {name!r} (type {pool_type.value}); its runs go through sunbeam-run"
    )
    typer.echo(crash_watch_note(name, window, watched))
    typer.echo(f"start a worker: prefect worker start --pool {name} --type {pool_type.value}")


def _fail(message: str) -> None:
    typer.echo(f"sunbeam pool: error: {message}", err=True)
    raise typer.Exit(2)


def main() -> None:
    app()
