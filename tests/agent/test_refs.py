"""Runs of `main`, a branch pushed after the worker started, a cache hit and a code-only commit."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from tests.support import agent_flow as flow_source
from tests.support.agent_stack import PREFECT_PIN, MainRun, Stack, labels
from tests.support.pipeline_repo import pyproject


def test_main_runs_in_its_synced_env(stack: Stack, main_run: MainRun) -> None:
    info = main_run.info
    got = labels(main_run.run)
    assert info["variant"] == "main-1"
    assert info["extra"] is None
    assert info["SUNBEAM_REF"] == "main"
    assert info["SUNBEAM_COMMIT"] == got["sunbeam.commit"]
    assert info["SUNBEAM_ENV_KEY"] == got["sunbeam.env_key"]
    assert info["SUNBEAM_REPO"] == stack.repo.url
    # The flow ran on the env's interpreter, inside the sync's cache, from the checkout.
    assert info["python"].startswith(str(stack.cache_dir))
    assert info["cwd"].startswith(str(stack.cache_dir))
    assert set(got) >= {
        "sunbeam.ref",
        "sunbeam.commit",
        "sunbeam.env_key",
        "sunbeam.cache_hit",
        "sunbeam.built",
        "sunbeam.healed",
        "sunbeam.sync_seconds",
        "sunbeam.timings",
    }
    assert got["sunbeam.ref"] == "main"
    assert set(json.loads(got["sunbeam.timings"])) >= {"fetch", "checkout", "verify", "build"}
    assert float(got["sunbeam.sync_seconds"]) > 0


def test_branch_pushed_after_start_runs_with_its_new_dependency(
    stack: Stack, main_deployment: UUID, main_run: MainRun, tmp_path: Path
) -> None:
    main = main_run.run
    files = {"pyproject.toml": pyproject("demo-pipeline", [PREFECT_PIN, "sunbeam-extra"])}
    sha = stack.repo.push_branch("feature-x", files, lock_from=(stack.wheelhouse,))

    out = tmp_path / "feature.json"
    run = stack.run(main_deployment, {"out": str(out)}, {"ref": "feature-x"})
    assert run.state is not None and run.state.is_completed(), run.state
    info = json.loads(out.read_text())
    got = labels(run)
    assert info["extra"] == "1.0"
    assert info["SUNBEAM_REF"] == "feature-x"
    assert got["sunbeam.commit"] == sha
    assert got["sunbeam.built"] == "true" and got["sunbeam.cache_hit"] == "false"
    assert got["sunbeam.env_key"] != labels(main)["sunbeam.env_key"]
    # The deployment's other job variables still apply: only `ref` was overridden.
    assert run.job_variables == {"ref": "feature-x"}


def test_main_again_is_a_cache_hit(stack: Stack, main_deployment: UUID, main_run: MainRun) -> None:
    first = main_run.run
    again = stack.run(main_deployment)
    assert again.state is not None and again.state.is_completed(), again.state
    got = labels(again)
    assert got["sunbeam.cache_hit"] == "true" and got["sunbeam.built"] == "false"
    assert got["sunbeam.env_key"] == labels(first)["sunbeam.env_key"]
    assert json.loads(got["sunbeam.timings"])["build"] < 1.0


def test_code_only_commit_reuses_the_env(
    stack: Stack, main_deployment: UUID, main_run: MainRun, tmp_path: Path
) -> None:
    before = labels(main_run.run)
    files = {"src/demo_pipeline/__init__.py": flow_source.package("main-2")}
    sha = stack.repo.push_branch("main", files)

    out = tmp_path / "code.json"
    run = stack.run(main_deployment, {"out": str(out)})
    assert run.state is not None and run.state.is_completed(), run.state
    got = labels(run)
    assert json.loads(out.read_text())["variant"] == "main-2"
    assert got["sunbeam.commit"] == sha != before["sunbeam.commit"]
    assert got["sunbeam.env_key"] == before["sunbeam.env_key"]
    assert got["sunbeam.built"] == "false" and got["sunbeam.cache_hit"] == "true"


def test_sync_steps_are_in_the_run_log(
    stack: Stack, main_deployment: UUID, main_run: MainRun
) -> None:
    files = {"pyproject.toml": pyproject("demo-logged", [PREFECT_PIN, "sunbeam-extra"])}
    stack.repo.push_branch("logged", files, lock_from=(stack.wheelhouse,))

    run = stack.run(main_deployment, job_variables={"ref": "logged"})
    assert run.state is not None and run.state.is_completed(), run.state
    lines = stack.wait_for_log(run.id, "hello {")
    text = "\n".join(lines)
    key = labels(run)["sunbeam.env_key"]
    assert "[git]" in text  # the fetch, as it happened
    assert "[uv]" in text or "[build]" in text  # the install
    assert f"key {key[:16]}" in text
    assert "Synced logged @" in text and "built" in text
    # The new env is read against main's (the repository's default branch), not the last built.
    assert "differs from main's env" in text and "+ sunbeam-extra 1.0" in text, text
    assert "fetch" in text and "checkout" in text and "verify" in text
    # The sync lines precede the flow's own: they were streamed while syncing.
    first_flow_line = next(i for i, line in enumerate(lines) if line.startswith("hello {"))
    assert any("[git]" in line for line in lines[:first_flow_line])


def test_sync_only_prewarms_without_running_the_flow(
    stack: Stack, main_deployment: UUID, tmp_path: Path
) -> None:
    files = {"pyproject.toml": pyproject("demo-prewarm", [PREFECT_PIN, "sunbeam-extra"])}
    stack.repo.push_branch("prewarm", files, lock_from=(stack.wheelhouse,))

    out = tmp_path / "prewarm.json"
    warm = stack.run(main_deployment, {"out": str(out)}, {"ref": "prewarm", "sync_only": True})
    assert warm.state is not None and warm.state.is_completed(), warm.state
    assert "Prewarmed" in (warm.state.message or "")
    assert labels(warm)["sunbeam.built"] == "true"
    assert not out.exists()

    run = stack.run(main_deployment, {"out": str(out)}, {"ref": "prewarm"})
    assert run.state is not None and run.state.is_completed(), run.state
    assert labels(run)["sunbeam.cache_hit"] == "true"
    assert out.exists()
