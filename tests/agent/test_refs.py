"""Runs of `main`, a branch pushed after the worker started, a cache hit and a code-only commit."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from tests.agent import flow_source
from tests.agent.conftest import PREFECT_PIN, Stack, labels
from tests.support.pipeline_repo import pyproject


def test_main_runs_in_its_synced_env(stack: Stack, main_deployment: UUID, tmp_path: Path) -> None:
    out = tmp_path / "main.json"
    run = stack.run(main_deployment, {"out": str(out)})
    assert run.state is not None and run.state.is_completed(), run.state
    info = json.loads(out.read_text())
    got = labels(run)
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
        "sunbeam.ref", "sunbeam.commit", "sunbeam.env_key", "sunbeam.cache_hit", "sunbeam.built",
        "sunbeam.healed", "sunbeam.sync_seconds", "sunbeam.timings",
    }
    assert got["sunbeam.ref"] == "main"
    assert set(json.loads(got["sunbeam.timings"])) >= {"fetch", "checkout", "verify", "build"}
    assert float(got["sunbeam.sync_seconds"]) > 0
