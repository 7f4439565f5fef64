"""Fixtures for the sync core: a local package index, pipeline repos, a cache, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from sunbeam_sync import PrepareRequest, PrepareResult, SyncSettings, prepare
from tests.support.gitrepo import PipelineRepo
from tests.support.pyindex import LocalIndex
from tests.support.sync_cli import SUNBEAM_SYNC
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


def pyproject(deps: Sequence[str], index_url: str, name: str = "pipeline") -> str:
    listed = ", ".join(f'"{d}"' for d in deps)
    return (
        f'[project]\nname = "{name}"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        f"dependencies = [{listed}]\n\n"
        f'[[tool.uv.index]]\nname = "local"\nurl = "{index_url}"\ndefault = true\n'
    )


@dataclass
class Project:
    repo: PipelineRepo
    index: LocalIndex
    subdir: str = "."

    def set_deps(self, deps: Sequence[str], *, lock: bool = True, name: str = "pipeline") -> None:
        folder = self.repo.work / self.subdir
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pyproject.toml").write_text(pyproject(deps, self.index.url, name=name))
        if lock:
            subprocess.run(
                ["uv", "lock", "-q", "--project", str(folder)], check=True, capture_output=True
            )

    def write_code(self, text: str) -> None:
        self.repo.write(f"{self.subdir}/flows.py", text)


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


def prep(
    settings: SyncSettings, repo: str, ref: str, project_dir: str = ".", **kw: object
) -> PrepareResult:
    with prepare(
        PrepareRequest(repo=repo, ref=ref, project_dir=project_dir, **kw), settings=settings
    ) as prepared:
        return prepared.result


def env_python(result: PrepareResult, code: str) -> str:
    return subprocess.run(
        [result.python, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.stdout.strip().splitlines()[-1])


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
    out = subprocess.run(
        [SUNBEAM_SYNC, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )
    return CliResult(out.returncode, out.stdout, out.stderr)
