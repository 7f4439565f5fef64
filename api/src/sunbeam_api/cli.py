"""The `sunbeam` command: a small argparse dispatcher, one function per subcommand.

Heavy imports (Prefect, FastAPI) happen inside the subcommands so `sunbeam --help` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

MAIN_REF = "main"


def cmd_deploy(args: argparse.Namespace) -> int:
    """Register (or update) the pipeline deployment for a ref."""
    import asyncio

    from sunbeam_api import deployments
    from sunbeam_api.dependencies import prefect_client
    from sunbeam_api.refs import validate_ref
    from sunbeam_api.settings import get_settings

    settings = get_settings()
    repo = args.repo or settings.pipeline_repo
    if not repo:
        print(
            "sunbeam deploy: no repository: pass --repo URL or set SUNBEAM_PIPELINE_REPO",
            file=sys.stderr,
        )
        return 2
    ref = validate_ref(args.ref)
    if args.cron is not None:
        deployments.cron_schedule(args.cron)

    async def deploy() -> str:
        async with prefect_client(settings) as client:
            deployment_id = await deployments.ensure_pipeline_deployment(
                client,
                repo_url=repo,
                ref=ref,
                work_pool=args.pool or settings.work_pool,
                project_dir=args.project_dir,
                cron=args.cron,
            )
        return str(deployment_id)

    deployment_id = asyncio.run(deploy())
    name = f"{deployments.FLOW_NAME}/{deployments.deployment_name(ref)}"
    print(f"deployed {name} (ref {ref}, id {deployment_id})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sunbeam", description="Sunbeam platform commands")
    sub = parser.add_subparsers(dest="command", required=True)

    deploy = sub.add_parser("deploy", help="register the pipeline deployment for a ref")
    deploy.add_argument("--repo", help="pipeline repository URL (default $SUNBEAM_PIPELINE_REPO)")
    deploy.add_argument("--pool", help="work pool (default $SUNBEAM_WORK_POOL or 'sunbeam')")
    deploy.add_argument("--ref", default=MAIN_REF, help="git ref (default main)")
    deploy.add_argument("--cron", help="cron schedule in UTC (main defaults to '0 2 * * *')")
    deploy.add_argument("--project-dir", default="pipeline", help="pipeline folder in the repo")
    deploy.set_defaults(func=cmd_deploy)
    return parser


def _user_message(exc: Exception) -> tuple[str, int] | None:
    """A one-line message and exit code for errors the user can act on; None for bugs."""
    import httpx

    from sunbeam_api.errors import SunbeamApiError

    if isinstance(exc, SunbeamApiError):
        return exc.message, 2
    if isinstance(exc, httpx.HTTPError):
        return f"Prefect is unreachable or refused the request ({type(exc).__name__})", 1
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except Exception as exc:
        known = _user_message(exc)
        if known is None:
            raise
        print(f"sunbeam {args.command}: {known[0]}", file=sys.stderr)
        return known[1]


if __name__ == "__main__":
    sys.exit(main())
