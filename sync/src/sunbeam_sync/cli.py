"""`sunbeam-sync`: prepare, list, verify and gc from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from sunbeam_sync import housekeeping
from sunbeam_sync.errors import BadInputError, Cancelled, SunbeamSyncError
from sunbeam_sync.prepare import PrepareRequest, prepare
from sunbeam_sync.settings import SyncSettings


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInputError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sunbeam-sync", description=__doc__)
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("prepare", help="check out REF and return a ready environment for its lock")
    p.add_argument("repo", help="git URL (https, ssh, file) or local path")
    p.add_argument("--ref", required=True, help="branch, tag, or full/abbreviated commit SHA")
    p.add_argument("--project-dir", default=".", help="folder with pyproject.toml and uv.lock")
    p.add_argument("--cache-dir", type=Path, help="default: $SUNBEAM_CACHE_DIR or ~/.cache/sunbeam")
    p.add_argument("--python", help="interpreter path or version; default $SUNBEAM_PYTHON / uv's")
    p.add_argument("--group", action="append", default=[], help="dependency group to install")
    p.add_argument("--extra", action="append", default=[], help="extra to install")
    p.add_argument(
        "--require", action="append", default=[], help="fail unless the lock includes PACKAGE"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON (last line)")

    p = sub.add_parser("list", help="environments in the cache")
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("verify", help="check every environment against its RECORD files")
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--deep", action="store_true", help="compare sha256 hashes, not just sizes")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("gc", help="evict least-recently-used environments and clear leftovers")
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--max-bytes", type=_size, help="byte budget for environments (e.g. 20G)")
    p.add_argument("--dry-run", action="store_true", help="report, delete nothing")
    p.add_argument("--json", action="store_true")
    return parser


def _size(text: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    num, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    try:
        value = int(float(num) * units[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 20G)") from None
    if value < 0:
        raise argparse.ArgumentTypeError("size must not be negative")
    return value


def _settings(args: argparse.Namespace) -> SyncSettings:
    settings = SyncSettings()
    if getattr(args, "cache_dir", None):
        settings.cache_dir = args.cache_dir
    if getattr(args, "python", None):
        settings.python = args.python
    return settings


def _emit(data: object, as_json: bool, text: str) -> None:
    if as_json:
        print(json.dumps(data, default=str))
    else:
        print(text)


def main(argv: Sequence[str] | None = None) -> int:
    cancel = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        cancel.set()

    signal.signal(signal.SIGTERM, _on_signal)
    try:
        args = _parser().parse_args(argv)
        logging.basicConfig(
            level=logging.ERROR if args.quiet else logging.INFO,
            format="%(message)s",
            stream=sys.stderr,
        )
        return _run(args, cancel)
    except KeyboardInterrupt:
        print("sunbeam-sync: cancelled", file=sys.stderr)
        return Cancelled.exit_code
    except SunbeamSyncError as exc:
        print(f"sunbeam-sync: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # no tracebacks for users; SUNBEAM_DEBUG=1 shows them
        if os.environ.get("SUNBEAM_DEBUG"):
            raise
        print(f"sunbeam-sync: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, cancel: threading.Event) -> int:
    settings = _settings(args)
    if args.command == "prepare":
        request = PrepareRequest(
            repo=args.repo,
            ref=args.ref,
            project_dir=args.project_dir,
            python=args.python,
            groups=args.group,
            extras=args.extra,
            required=args.require,
        )
        with prepare(request, settings=settings, cancel=cancel) as prepared:
            r = prepared.result
            _emit(r.model_dump(), args.json, f"{r.env}\n{r.checkout}")
        return 0
    if args.command == "list":
        envs = housekeeping.list_envs(settings)
        lines = [
            f"{e.key[:16]}  {e.size_bytes / 1e6:8.1f} MB  {'in use' if e.in_use else 'idle  '}  "
            f"{e.last_used_iso or '-':20}  {', '.join(e.refs[-3:]) or '-'}"
            for e in envs
        ]
        _emit([e.model_dump() for e in envs], args.json, "\n".join(lines) or "no environments")
        return 0
    if args.command == "verify":
        report = housekeeping.verify_all(settings, deep=args.deep)
        lines = [
            f"{r.key[:16]}  {'ok' if r.ok else 'DAMAGED: ' + (r.reason or '')}" for r in report
        ]
        _emit([r.model_dump() for r in report], args.json, "\n".join(lines) or "no environments")
        return 0 if all(r.ok for r in report) else 1
    if args.command == "gc":
        gc = housekeeping.collect_garbage(settings, max_bytes=args.max_bytes, dry_run=args.dry_run)
        verb = "would reclaim" if args.dry_run else "reclaimed"
        text = "\n".join(
            [
                f"{item.kind:10} {item.name[:40]:40} {item.bytes / 1e6:8.1f} MB"
                for item in gc.removed
            ]
            + [f"kept in use: {', '.join(k[:12] for k in gc.kept_in_use) or '-'}"]
            + [f"{verb} {gc.bytes_reclaimed / 1e6:.1f} MB"]
        )
        _emit(gc.model_dump(), args.json, text)
        return 0
    raise BadInputError(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
