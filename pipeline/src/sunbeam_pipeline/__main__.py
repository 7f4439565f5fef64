"""`python -m sunbeam_pipeline` (or `sunbeam-pipeline`): write sample telemetry, run the flow.

simulate [EVENT ...] [--force]   write <data_dir>/<event>.csv for simulated events
run [--event E ...] [--stage S ...]   run the run-sunbeam flow here (needs a Prefect API,
                                      or Prefect's ephemeral mode)
"""

from __future__ import annotations

import argparse
import sys

from sunbeam_pipeline.config import load_settings
from sunbeam_pipeline.errors import ConfigError, SunbeamPipelineError


def _simulate(names: list[str], force: bool) -> int:
    from sunbeam_pipeline.simulator import write_simulated_csv
    from sunbeam_pipeline.sources.csv_source import csv_path

    settings = load_settings()
    events = [settings.event(n) for n in names] if names else list(settings.events)
    for event in events:
        if event.simulate is None:
            raise ConfigError(f"event {event.name} has no [events.simulate] table")
        path = csv_path(settings.data_dir, event.name)
        if path.exists() and not force:
            print(f"{event.name}: {path} exists (use --force to rewrite it)")
            continue
        write_simulated_csv(event, settings, path)
        print(f"{event.name}: wrote {path}")
    return 0


def _run(events: list[str] | None, stages: list[str] | None) -> int:
    from sunbeam_pipeline.flow import run_sunbeam

    state = run_sunbeam(events=events, stages=stages, return_state=True)
    if state.is_completed():
        return 0
    error = state.result(raise_on_failure=False)
    print(f"error: {error}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sunbeam-pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    simulate = commands.add_parser("simulate", help="write simulated telemetry files")
    simulate.add_argument("events", nargs="*", help="event names (default: all simulated)")
    simulate.add_argument("--force", action="store_true", help="rewrite existing files")
    run = commands.add_parser("run", help="run the pipeline flow in this process")
    run.add_argument("--event", action="append", dest="events", help="event (repeatable)")
    run.add_argument("--stage", action="append", dest="stages", help="stage (repeatable)")
    args = parser.parse_args(argv)
    try:
        if args.command == "simulate":
            return _simulate(args.events, args.force)
        return _run(args.events, args.stages)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SunbeamPipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
