"""`sunbeam-sync`: prepare, list, verify and gc from the command line.

Exit codes: 0 ok, 2 bad input (ref, URL, project, lock, usage), 1 git/uv/network trouble,
130 cancelled. Errors are one line on stderr. Heavy modules load inside the commands, so
`--help` costs only typer's own start-up.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from sunbeam_contracts.processes import restore_stop_signals
from sunbeam_sync.errors import Cancelled, SunbeamSyncError

app = typer.Typer(
    name="sunbeam-sync",
    help="Any git ref -> its own locked, cached, self-healing uv environment.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
)
_cancel = threading.Event()

CacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="default: $SUNBEAM_CACHE_DIR or ~/.cache/sunbeam"),
]
Json = Annotated[bool, typer.Option("--json", help="print the result as JSON (last line)")]


def _size(text: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    num, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    try:
        value = int(float(num) * units[unit])
    except ValueError:
        raise typer.BadParameter(f"not a size: {text!r} (e.g. 500M, 20G)") from None
    if value < 0:
        raise typer.BadParameter("size must not be negative")
    return value


def _settings(cache_dir: Path | None, python: str | None = None):  # type: ignore[no-untyped-def]
    from sunbeam_sync.settings import SyncSettings

    settings = SyncSettings()
    if cache_dir:
        settings.cache_dir = cache_dir
    if python:
        settings.python = python
    return settings


def _emit(data: object, as_json: bool, text: str) -> None:
    print(json.dumps(data, default=str) if as_json else text)


@app.callback()
def _root(
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="only errors on stderr")] = False,
) -> None:
    logging.basicConfig(
        level=logging.ERROR if quiet else logging.INFO, format="%(message)s", stream=sys.stderr
    )


@app.command("prepare")
def prepare_command(
    repo: Annotated[str, typer.Argument(help="git URL (https, ssh, file) or local path")],
    ref: Annotated[str, typer.Option(help="branch, tag, or full/abbreviated commit SHA")],
    project_dir: Annotated[str, typer.Option(help="folder with pyproject.toml and uv.lock")] = ".",
    cache_dir: CacheDir = None,
    python: Annotated[
        str | None, typer.Option(help="interpreter path or version; default $SUNBEAM_PYTHON / uv's")
    ] = None,
    group: Annotated[list[str] | None, typer.Option(help="dependency group to install")] = None,
    extra: Annotated[list[str] | None, typer.Option(help="extra to install")] = None,
    require: Annotated[
        list[str] | None, typer.Option(help="fail unless the lock includes PACKAGE")
    ] = None,
    as_json: Json = False,
) -> None:
    """Check out REF and return a ready environment for its lock."""
    from sunbeam_sync.preparation import prepare
    from sunbeam_sync.request import PrepareRequest

    request = PrepareRequest(
        repo=repo,
        ref=ref,
        project_dir=project_dir,
        python=python,
        groups=group or [],
        extras=extra or [],
        required=require or [],
    )
    settings = _settings(cache_dir, python)
    with prepare(request, settings=settings, cancel=_cancel) as prepared:
        r = prepared.result
        _emit(r.as_dict(), as_json, f"{r.env}\n{r.checkout}")


@app.command("list")
def list_command(cache_dir: CacheDir = None, as_json: Json = False) -> None:
    """Environments in the cache."""
    from sunbeam_sync.housekeeping import list_envs

    envs = list_envs(_settings(cache_dir))
    lines = [f"{'KEY':16}  {'FREES':>9}  {'APPARENT':>9}  {'STATE':6}  {'LAST USED':25}  REFS"]
    lines += [
        f"{e.key[:16]}  {e.size_bytes / 1e6:6.1f} MB  {e.apparent_bytes / 1e6:6.1f} MB  "
        f"{'in use' if e.in_use else 'idle  '}  {e.last_used_iso or '-':25}  "
        f"{', '.join(e.refs[-3:]) or '-'}"
        for e in envs
    ]
    lines.append(
        "FREES: what evicting the env frees, in disk blocks (files hardlinked with uv's cache or "
        "other envs stay); "
        "APPARENT: the size of all its files"
    )
    text = "\n".join(lines) if envs else "no environments"
    _emit([e.model_dump() for e in envs], as_json, text)


@app.command("verify")
def verify_command(
    cache_dir: CacheDir = None,
    deep: Annotated[bool, typer.Option(help="compare sha256 hashes, not just sizes")] = False,
    as_json: Json = False,
) -> None:
    """Check every environment against its RECORD files (exit 1 if any is damaged)."""
    from sunbeam_sync.housekeeping import verify_all

    report = verify_all(_settings(cache_dir), deep=deep)
    lines = [f"{r.key[:16]}  {'ok' if r.ok else 'DAMAGED: ' + (r.reason or '')}" for r in report]
    _emit([r.model_dump() for r in report], as_json, "\n".join(lines) or "no environments")
    if not all(r.ok for r in report):
        raise typer.Exit(1)


@app.command("gc")
def gc_command(
    cache_dir: CacheDir = None,
    max_bytes: Annotated[
        int | None,
        typer.Option(parser=_size, help="byte budget for environments (e.g. 20G)"),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="report, delete nothing")] = False,
    as_json: Json = False,
) -> None:
    """Evict least-recently-used environments and clear leftovers."""
    from sunbeam_sync.housekeeping import collect_garbage

    gc = collect_garbage(_settings(cache_dir), max_bytes=max_bytes, dry_run=dry_run)
    verb = "would reclaim" if dry_run else "reclaimed"
    text = "\n".join(
        [
            f"{item.kind:10} {item.name[:40]:40} {item.bytes / 1e6:8.1f} MB  {item.why}"
            for item in gc.removed
        ]
        + [f"kept in use: {', '.join(k[:12] for k in gc.kept_in_use) or '-'}"]
        + [f"kept (newest commit of a recent ref): {', '.join(gc.kept_recent) or '-'}"]
        + [f"could not delete: {', '.join(gc.failed)}"] * bool(gc.failed)
        + [f"{verb} {gc.bytes_reclaimed / 1e6:.1f} MB"]
    )
    _emit(gc.model_dump(), as_json, text)


def main(argv: Sequence[str] | None = None) -> int:
    _cancel.clear()
    restore_stop_signals()  # SIGINT cancels even when started in the background
    signal.signal(signal.SIGTERM, lambda _signum, _frame: _cancel.set())
    try:
        code = app(args=list(argv) if argv is not None else None, standalone_mode=False)
        return code if isinstance(code, int) else 0
    except (KeyboardInterrupt, typer.Abort):
        print("sunbeam-sync: cancelled", file=sys.stderr)
        return Cancelled.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors: exit 2, one line
        print(f"sunbeam-sync: error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except SunbeamSyncError as exc:
        print(f"sunbeam-sync: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # no tracebacks for users; SUNBEAM_DEBUG=1 shows them
        if os.environ.get("SUNBEAM_DEBUG"):
            raise
        print(f"sunbeam-sync: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
