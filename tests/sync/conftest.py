"""Fixtures for the sync core: a local package index, pipeline repos, a cache, the CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sunbeam_sync import SyncSettings
from tests.support.gitrepo import PipelineRepo
from tests.support.pyindex import LocalIndex
from tests.support.sync_project import Project
from tests.support.wheels import build_wheel


@pytest.fixture(scope="session")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIndex]:
    root = tmp_path_factory.mktemp("index")
    idx = LocalIndex(root).start()
    wheels = root / "built"
    idx.add(build_wheel(wheels, "alpha", "1.0"))
    idx.add(build_wheel(wheels, "alpha", "2.0"))
    idx.add(build_wheel(wheels, "beta", "1.0", requires=["alpha>=1"]))
    idx.add(build_wheel(wheels, "gamma", "1.0", padding=256))
    # Many files, so a build takes long enough to be interrupted.
    idx.add(
        build_wheel(
            wheels,
            "bulky",
            "1.0",
            files={f"bulky/mod{i:04d}.py": f"X = {i}\n" * 50 for i in range(3000)},
        )
    )
    yield idx
    idx.stop()


@pytest.fixture(scope="session", autouse=True)
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("uv-cache")
    old = os.environ.get("UV_CACHE_DIR")
    os.environ["UV_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("UV_CACHE_DIR", None)
    else:
        os.environ["UV_CACHE_DIR"] = old


@pytest.fixture
def project(tmp_path: Path, index: LocalIndex) -> Project:
    proj = Project(PipelineRepo(tmp_path / "repo"), index)
    proj.set_deps(["alpha==1.0"])
    proj.write_code("print('hello')\n")
    proj.repo.commit("initial")
    return proj


@pytest.fixture
def settings(tmp_path: Path) -> SyncSettings:
    return SyncSettings(cache_dir=tmp_path / "cache", bytecode="off", retry_backoff=0.05)
