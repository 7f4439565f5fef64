"""Fixtures for the pipeline tests: a real MongoDB wire server, a real (temporary) Prefect API,
and per-test pipeline configuration pointing at both (helpers in tests/support/pipeline_env.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mongo import mongo_server
from tests.support.pipeline_env import CompletedRun, PipelineEnv, make_env
from tests.support.prefect_server import PrefectServer


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mongo_server(tmp_path_factory.mktemp("mongo")) as server:
        yield server.uri


@pytest.fixture(scope="session")
def prefect_api(prefect_server: PrefectServer) -> Iterator[None]:
    """In-process flow runs report to the session's real Prefect server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        yield


@pytest.fixture
def pipeline_env(
    tmp_path: Path, mongo_uri: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> PipelineEnv:
    """A fresh database and data directory for one test."""
    return make_env(
        tmp_path,
        mongo_uri,
        f"t_{hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]}",
        monkeypatch,
    )


@pytest.fixture(scope="session")
def completed_run(
    tmp_path_factory: pytest.TempPathFactory, mongo_uri: str, prefect_api: None
) -> CompletedRun:
    """One full pipeline run over both test events, shared by the read-only checks."""
    from sunbeam_pipeline.flow import run_sunbeam

    with pytest.MonkeyPatch.context() as monkeypatch:
        env = make_env(tmp_path_factory.mktemp("run"), mongo_uri, "e2e", monkeypatch)
        summary = run_sunbeam()
    return CompletedRun(env, summary)
