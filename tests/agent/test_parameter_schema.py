"""Issue 10.7: a deployment gets its flow's parameter schema from the ref's own env.

Before the agent stored it, a deployment showed "0 parameters" in the dashboard and a typo'd
parameter was accepted, then crashed the run. The schema is computed after the sync by the
env's interpreter in the checkout, stored strict, once per commit, only on a deployment that
runs the run's ref, and never fails the run.
"""

from __future__ import annotations

from uuid import UUID

import pytest
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import PrefectHTTPStatusError

from sunbeam_contracts.parameter_schemas import parameter_names, schema_commit
from tests.support import agent_flow as flow_source
from tests.support.agent_stack import Stack, labels

HELLO_PARAMETERS = ["crash", "fail", "gate", "out", "sleep"]
STORED_LINE = "Deployment parameters from"


def _schema(stack: Stack, deployment_id: UUID) -> dict:
    return stack.client.read_deployment(deployment_id).parameter_openapi_schema or {}


def _run_count(stack: Stack, deployment_id: UUID) -> int:
    only = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    return len(stack.client.read_flow_runs(deployment_filter=only, limit=200))


def _prewarm(stack: Stack, deployment_id: UUID, ref: str | None = None) -> FlowRun:
    job_variables: dict[str, object] = {"sync_only": True}
    if ref is not None:
        job_variables["ref"] = ref
    run = stack.run(deployment_id, job_variables=job_variables)
    assert run.state is not None and run.state.is_completed(), run.state
    return run


def test_a_prewarm_stores_the_flow_schema_and_prefect_refuses_a_typo(stack: Stack) -> None:
    deployment_id = stack.deployment("schema-main")
    assert parameter_names(_schema(stack, deployment_id)) == []  # "0 parameters"

    warm = _prewarm(stack, deployment_id)
    schema = _schema(stack, deployment_id)
    assert parameter_names(schema) == HELLO_PARAMETERS
    assert schema["properties"]["sleep"]["type"] == "number"
    assert schema["additionalProperties"] is False
    assert schema_commit(schema) == labels(warm)["sunbeam.commit"]
    assert stack.client.read_deployment(deployment_id).enforce_parameter_schema
    stack.wait_for_log(
        warm.id, f"{STORED_LINE} {labels(warm)['sunbeam.commit'][:12]}: {len(HELLO_PARAMETERS)}"
    )

    runs = _run_count(stack, deployment_id)
    with pytest.raises(PrefectHTTPStatusError) as refused:
        stack.submit(deployment_id, {"slep": 1})
    assert refused.value.response.status_code == 409
    assert "slep" in refused.value.response.text
    assert _run_count(stack, deployment_id) == runs  # no run was created

    # Same commit again: the stored schema is kept, not recomputed.
    again = _prewarm(stack, deployment_id)
    stack.wait_for_log(again.id, "Prewarmed")
    assert not any(STORED_LINE in line for line in stack.logs(again.id))


def test_only_a_deployment_of_the_runs_ref_takes_its_schema(stack: Stack) -> None:
    flow = flow_source.FLOW.replace('gate: str = ""\n):', 'gate: str = "", laps: int = 1\n):')
    assert flow != flow_source.FLOW
    sha = stack.repo.push_branch("schema-laps", {"flows/hello.py": flow})
    main_deployment = stack.deployment("schema-main-other")
    _prewarm(stack, main_deployment)

    _prewarm(stack, main_deployment, ref="schema-laps")  # another ref on main's deployment
    assert parameter_names(_schema(stack, main_deployment)) == HELLO_PARAMETERS

    per_ref = stack.deployment("ref-schema-laps", job_variables={"ref": "schema-laps"})
    _prewarm(stack, per_ref)
    schema = _schema(stack, per_ref)
    assert parameter_names(schema) == sorted([*HELLO_PARAMETERS, "laps"])
    assert schema_commit(schema) == sha


def test_a_flow_that_cannot_be_loaded_costs_the_prewarm_nothing(stack: Stack) -> None:
    stack.repo.push_branch("schema-broken", {"flows/hello.py": "raise RuntimeError('no flow')\n"})
    deployment_id = stack.deployment("ref-schema-broken", job_variables={"ref": "schema-broken"})
    warm = _prewarm(stack, deployment_id)
    lines = stack.wait_for_log(warm.id, "Could not store the flow's parameter schema")
    warning = next(line for line in lines if "Could not store" in line)
    assert "no flow" in warning and "\n" not in warning
    assert parameter_names(_schema(stack, deployment_id)) == []
