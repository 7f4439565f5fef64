"""The `sunbeam` command: a small argparse dispatcher, one function per subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from sunbeam_api import cli_up


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sunbeam", description="Sunbeam platform commands")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_up.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
