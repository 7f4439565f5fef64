"""Exact reruns: a retried, copied or rerun run runs the commit it first ran, even after its
branch moved, filed under its branch and saying so; a new run takes the branch's latest commit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.states import Scheduled

from sunbeam_api.orchestration.runs import create_rerun
from tests.support import agent_flow as flow_source
from tests.support.agent_stack import PREFECT_PIN, Stack, labels
from tests.support.pipeline_repo import pyproject


def _ran(out: Path) -> dict[str, str]:
    info = json.loads(out.read_text())
    out.unlink()
    return info


def _completed(run: FlowRun) -> FlowRun:
    assert run.state is not None and run.state.is_completed(), run.state
    return run


@pytest.fixture(scope="module")
def moved_branch(stack: Stack, main_deployment: UUID, tmp_path_factory: pytest.TempPathFactory):
    """`try-me` ran at its first commit (with sunbeam-extra), then moved on (without it)."""
    out = tmp_path_factory.mktemp("reruns") / "out.json"
    files = {
        "pyproject.toml": pyproject("demo-pipeline", [PREFECT_PIN, "sunbeam-extra"]),
        "src/demo_pipeline/__init__.py": flow_source.package("try-1"),
    }
    first = stack.repo.push_branch("try-me", files, lock_from=(stack.wheelhouse,))
    run = _completed(stack.run(main_deployment, {"out": str(out)}, {"ref": "try-me"}))
    assert _ran(out)["variant"] == "try-1"
    files = {
        "pyproject.toml": pyproject("demo-pipeline", [PREFECT_PIN]),
        "src/demo_pipeline/__init__.py": flow_source.package("try-2"),
    }
    latest = stack.repo.push_branch("try-me", files, lock_from=(stack.wheelhouse,), start="try-me")
    return run, first, latest, out


def _assert_first_commit(stack: Stack, run: FlowRun, moved_branch, how: str) -> None:  # type: ignore[no-untyped-def]
    original, first, latest, out = moved_branch
    info = _ran(out)
    assert (info["variant"], info["extra"]) == ("try-1", "1.0")  # the first commit, its env
    assert info["SUNBEAM_REF"] == "try-me" and info["SUNBEAM_COMMIT"] == first
    got = labels(run)
    assert got["sunbeam.commit"] == first
    assert got["sunbeam.env_key"] == labels(original)["sunbeam.env_key"]  # same lock, same env
    # A retry or an API rerun knows the original's env and compares (a copy only has the tag);
    # the launcher's lines reach the log in order, so the last one means all of them did.
    compared = "tag" not in how
    last = "Same env as the original run" if compared else "Starting flow"
    text = "\n".join(stack.wait_for_log(run.id, last))
    assert how in text
    assert ("Same env as the original run" in text) == compared
    assert f"try-me is now at {latest}" in text
    assert "for try-me's latest commit, start a new run" in text


def test_dashboard_retry_reruns_the_commit_it_ran(stack: Stack, moved_branch) -> None:  # type: ignore[no-untyped-def]
    original = moved_branch[0]
    # What the dashboard's Retry does (Prefect 3.9's UI): the same run, AwaitingRetry.
    stack.client.set_flow_run_state(
        original.id, Scheduled(name="AwaitingRetry", message="Retry from the UI"), force=True
    )
    retried = _completed(stack.wait(original.id))
    assert retried.name == original.name  # not renamed after the branch's new head
    _assert_first_commit(stack, retried, moved_branch, "the commit this run first ran")


def test_copy_to_new_run_keeps_the_commit_tag(stack: Stack, moved_branch) -> None:  # type: ignore[no-untyped-def]
    original = moved_branch[0]
    # What "Copy to new run" submits: the run's parameters, job variables and tags.
    assert original.deployment_id is not None
    copy = stack.client.create_flow_run_from_deployment(
        original.deployment_id,
        parameters=original.parameters,
        job_variables=original.job_variables,
        tags=stack.client.read_flow_run(original.id).tags,
    )
    run = _completed(stack.wait(copy.id))
    _assert_first_commit(stack, run, moved_branch, "pinned by the run's tag sunbeam-commit:")


def test_api_rerun_runs_the_same_commit_and_latest_is_explicit(stack: Stack, moved_branch) -> None:  # type: ignore[no-untyped-def]
    original, _first, latest, out = moved_branch

    async def rerun(latest_head: bool) -> FlowRun:
        async with PrefectClient(api=stack.server.api_url) as client:
            found = await client.read_flow_run(original.id)
            return await create_rerun(client, found, latest=latest_head)

    exact = _completed(stack.wait(asyncio.run(rerun(False)).id))
    _assert_first_commit(stack, exact, moved_branch, f"the commit run {original.id} ran")
    assert labels(exact)["sunbeam.rerun_of"] == str(original.id)

    newest = _completed(stack.wait(asyncio.run(rerun(True)).id))
    info = _ran(out)
    assert (info["variant"], info["SUNBEAM_COMMIT"]) == ("try-2", latest)
    assert labels(newest)["sunbeam.commit"] == latest
