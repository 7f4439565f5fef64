"""A bad ref or a bad lock fails the run (one-line message, detail in its log); the worker
keeps serving."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from tests.support.agent_stack import PREFECT_PIN, Stack
from tests.support.pipeline_repo import pyproject
from tests.support.wheels import build_wheel


def _assert_failed(stack: Stack, run_id: UUID, *needles: str) -> str:
    run = stack.wait(run_id)
    assert run.state is not None and run.state.is_failed(), run.state
    message = run.state.message or ""
    assert message and "\n" not in message and "Traceback" not in message
    for needle in needles:
        assert needle in message, message
    stack.wait_for_log(run_id, message)  # the message is in the log too, with the detail
    return message


@pytest.mark.parametrize(
    ("ref", "needle"), [("does-not-exist", "does-not-exist"), ("bad..ref", "ref")]
)
def test_unknown_or_invalid_ref_fails_the_run(
    stack: Stack, main_deployment: UUID, ref: str, needle: str
) -> None:
    run = stack.submit(main_deployment, job_variables={"ref": ref})
    _assert_failed(stack, run.id, needle)


def test_missing_lock_fails_the_run(stack: Stack, main_deployment: UUID) -> None:
    stack.repo.push_branch("no-lock", remove=("uv.lock",))
    run = stack.submit(main_deployment, job_variables={"ref": "no-lock"})
    _assert_failed(stack, run.id, "uv.lock")


def test_lock_without_prefect_fails_the_run(stack: Stack, main_deployment: UUID) -> None:
    files = {"pyproject.toml": pyproject("demo-noprefect", ["sunbeam-extra"])}
    stack.repo.push_branch("no-prefect", files, lock_from=(stack.wheelhouse,))
    run = stack.submit(main_deployment, job_variables={"ref": "no-prefect"})
    _assert_failed(stack, run.id, "prefect", "uv lock")


def test_install_failure_fails_the_run(stack: Stack, main_deployment: UUID, tmp_path: Path) -> None:
    links = tmp_path / "links"
    wheel = build_wheel(links, "sunbeam-broken", "1.0")
    files = {"pyproject.toml": pyproject("demo-broken", [PREFECT_PIN, "sunbeam-broken"])}
    stack.repo.push_branch("broken-install", files, lock_from=(stack.wheelhouse, links))
    wheel.write_bytes(b"this is not a zip file")  # the locked wheel is now corrupt
    run = stack.submit(main_deployment, job_variables={"ref": "broken-install"})
    _assert_failed(stack, run.id)
    lines = stack.logs(run.id)
    assert any("sunbeam-broken" in line or "sunbeam_broken" in line for line in lines), lines

    # The worker is still serving.
    ok = stack.run(main_deployment)
    assert ok.state is not None and ok.state.is_completed(), ok.state


def test_missing_repo_url_fails_the_run(stack: Stack, main_deployment: UUID) -> None:
    run = stack.submit(main_deployment, job_variables={"repo_url": None})
    _assert_failed(stack, run.id, "repo_url")
