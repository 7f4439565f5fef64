"""Run a flow's on_crashed / on_cancellation hooks inside the flow's own environment.

This file is not imported by the agent: its source is passed to the ref's interpreter with
`python -c`, so it may only use the standard library and that env's `prefect` (any 3.x).
argv: hook type ("crashed" | "cancellation"), entrypoint, flow-run JSON path, state JSON path.
"""

import inspect
import sys


def _load_flow(entrypoint):
    from prefect.flows import load_flow_from_entrypoint

    if "use_placeholder_flow" in inspect.signature(load_flow_from_entrypoint).parameters:
        return load_flow_from_entrypoint(entrypoint, use_placeholder_flow=False)
    return load_flow_from_entrypoint(entrypoint)


async def _run(hook_type, entrypoint, flow_run_path, state_path):
    from prefect.client.schemas.objects import FlowRun, State
    from prefect.logging.loggers import flow_run_logger

    with open(flow_run_path, encoding="utf-8") as f:
        flow_run = FlowRun.model_validate_json(f.read())
    with open(state_path, encoding="utf-8") as f:
        state = State.model_validate_json(f.read())
    flow = _load_flow(entrypoint)
    logger = flow_run_logger(flow_run, flow)
    hooks = flow.on_crashed_hooks if hook_type == "crashed" else flow.on_cancellation_hooks
    for hook in hooks or []:
        name = getattr(hook, "__name__", type(hook).__name__)
        logger.info("Running hook %r in response to entering state %r", name, state.name)
        try:
            result = hook(flow=flow, flow_run=flow_run, state=state)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("An error was encountered while running hook %r", name)
        else:
            logger.info("Hook %r finished running successfully", name)


def main(argv):
    import asyncio

    asyncio.run(_run(*argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
