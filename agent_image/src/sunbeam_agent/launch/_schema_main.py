"""Print a flow's parameter schema as JSON, computed inside the flow's own environment.

This file is not imported by the agent: its source is passed to the ref's interpreter with
`python -c`, so it may only use the standard library and that env's `prefect` (any 3.x).
argv: the flow's entrypoint (`path/to/flow.py:func` or `package.module:func`).
"""

import inspect
import json
import sys


def _load_flow(entrypoint):
    from prefect.flows import load_flow_from_entrypoint

    if "use_placeholder_flow" in inspect.signature(load_flow_from_entrypoint).parameters:
        return load_flow_from_entrypoint(entrypoint, use_placeholder_flow=False)
    return load_flow_from_entrypoint(entrypoint)


def main(argv):
    from prefect.utilities.callables import parameter_schema

    flow = _load_flow(argv[0])
    # What `flow.to_deployment()` stores as the deployment's parameter_openapi_schema.
    schema = parameter_schema(flow.fn).model_dump_for_openapi()
    sys.stdout.write(json.dumps(schema))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
