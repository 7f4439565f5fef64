"""A bad ref, a bad lock or flow code that does not load fails the run (one-line message,
detail in its log); the worker keeps serving."""

from __future__ import annotations

import sys
from pathlib import Path
from uuid import UUID

import pytest

from tests.support import agent_flow as flow_source
from tests.support.agent_stack import PREFECT_PIN, MainRun, Stack
from tests.support.pipeline_repo import pinned_python_range, pyproject
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


# ---------------------------------------------------------------------------------------------
# The everyday mistakes of a pipeline developer (issue 22): each ends Failed, never Crashed,
# with one line naming the cause and the fix, and the run is named `REF@COMMIT8 (name)`.


def _assert_named(stack: Stack, run_id: UUID, ref: str, sha: str) -> None:
    run = stack.client.read_flow_run(run_id)
    assert run.name.startswith(f"{ref}@{sha[:8]} ("), run.name
    assert f"sunbeam-ref:{ref}" in run.tags and f"sunbeam-commit:{sha[:8]}" in run.tags, run.tags
    assert (run.labels or {}).get("sunbeam.commit") == sha, run.labels


def test_forgotten_uv_lock_is_refused_on_a_cache_hit(
    stack: Stack, main_deployment: UUID, main_run: MainRun, tmp_path: Path
) -> None:
    """pyproject.toml gains a package, uv.lock is main's (same bytes: main's env is a hit)."""
    files = {"pyproject.toml": pyproject("demo-pipeline", [PREFECT_PIN, "sunbeam-extra"])}
    sha = stack.repo.push_branch("forgot-lock", files)
    out = tmp_path / "never.json"
    run = stack.submit(main_deployment, {"out": str(out)}, {"ref": "forgot-lock"})
    message = _assert_failed(stack, run.id, "out of date", "sunbeam-extra", "`uv lock`")
    assert "sunbeam-extra in pyproject.toml, not in uv.lock" in message, message
    _assert_named(stack, run.id, "forgot-lock", sha)
    assert not out.exists()  # refused before the flow ran


def test_unparsable_lock_names_uvs_cause(stack: Stack, main_deployment: UUID) -> None:
    lock = (stack.repo.project / "uv.lock").read_text()
    broken = lock.replace('name = "prefect"\nversion = "', 'name = "prefect"\nversion = "x', 1)
    assert broken != lock
    sha = stack.repo.push_branch("hand-edited-lock", {"uv.lock": broken})
    run = stack.submit(main_deployment, job_variables={"ref": "hand-edited-lock"})
    message = _assert_failed(stack, run.id, "uv.lock cannot be parsed", "TOML parse error at line")
    assert "expected version to start with a number" in message, message
    _assert_named(stack, run.id, "hand-edited-lock", sha)


def test_requires_python_without_an_interpreter(stack: Stack, main_deployment: UUID) -> None:
    text = pyproject("demo-pipeline", [PREFECT_PIN]).replace(
        f'requires-python = "{pinned_python_range()}"', 'requires-python = ">=3.99"'
    )
    sha = stack.repo.push_branch("py399", {"pyproject.toml": text})
    run = stack.submit(main_deployment, job_variables={"ref": "py399"})
    have = f"{sys.version_info.major}.{sys.version_info.minor}."
    _assert_failed(stack, run.id, "requires Python >=3.99", f"this agent has Python {have}")
    _assert_named(stack, run.id, "py399", sha)


@pytest.mark.parametrize(
    ("branch", "files", "needles"),
    [
        (
            "syntax-error",
            {"src/demo_pipeline/__init__.py": 'VARIANT = ("unclosed"\n'},
            ("syntax error in src/demo_pipeline/__init__.py:1", "fix it and push"),
        ),
        (
            "missing-package",
            {"src/demo_pipeline/__init__.py": 'import tabulate\nVARIANT = "x"\n'},
            (
                "package tabulate is imported (src/demo_pipeline/__init__.py:1) but not in "
                "uv.lock: add it with `uv add tabulate`, commit uv.lock",
            ),
        ),
        (
            "bad-import",
            {
                "src/demo_pipeline/__init__.py": 'from demo_pipeline.nothere import x\nVARIANT = "x"\n'
            },
            ("src/demo_pipeline/__init__.py:1: module demo_pipeline.nothere does not exist",),
        ),
        (
            "renamed-flow",
            {"flows/hello.py": flow_source.FLOW.replace("def hello(", "def renamed(")},
            (
                "the flow's entrypoint flows/hello.py:hello does not load: Function with name "
                "'hello' not found in 'flows/hello.py'",
            ),
        ),
    ],
)
def test_flow_code_that_does_not_load_fails_in_one_line(
    stack: Stack,
    main_deployment: UUID,
    main_run: MainRun,
    branch: str,
    files: dict[str, str],
    needles: tuple[str, ...],
) -> None:
    sha = stack.repo.push_branch(branch, files)
    run = stack.submit(main_deployment, job_variables={"ref": branch})
    _assert_failed(stack, run.id, *needles)
    _assert_named(stack, run.id, branch, sha)
    # The detail (Prefect's traceback) is still in the log.
    assert any("Traceback" in line for line in stack.logs(run.id)), stack.logs(run.id)


def test_missing_entrypoint_file(stack: Stack, main_deployment: UUID) -> None:
    sha = stack.repo.push_branch("no-flow-file", remove=("flows/hello.py",))
    run = stack.submit(main_deployment, job_variables={"ref": "no-flow-file"})
    _assert_failed(stack, run.id, "entrypoint flows/hello.py does not exist at no-flow-file")
    _assert_named(stack, run.id, "no-flow-file", sha)
