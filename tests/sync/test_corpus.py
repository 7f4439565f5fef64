"""Issue 25 §5: a corpus of repository shapes teams run Prefect from, built hermetically.

Each shape (overlapping namespace files, a workspace with members that have their own
dependencies, `.python-version`, a git source, a virtual project in a sub-folder, an sdist-only
package) is prepared, verified deeply, hit, and its flow imported, from wheels, sdists and git
repositories made in the test. Only interpreters already on this machine are used.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sunbeam_sync import SyncSettings
from tests.support.corpus import (
    Shape,
    dbt_namespace,
    dbt_wheels,
    git_package,
    git_source,
    python_pinned,
    run_flow,
    sdist_only,
    sdist_packages,
    virtual_subfolder,
    workspace,
)
from tests.support.gitrepo import PipelineRepo
from tests.support.gitserver import PrivateGitServer
from tests.support.pyindex import LocalIndex
from tests.support.sync_project import prep, run_cli

Build = Callable[[PipelineRepo, LocalIndex], list[Shape]]


@pytest.fixture(scope="module")
def corpus_index(index: LocalIndex, tmp_path_factory: pytest.TempPathFactory) -> LocalIndex:
    folder = tmp_path_factory.mktemp("corpus-dists")
    index.add_all(dbt_wheels(folder) + sdist_packages(folder))
    return index


@pytest.fixture(scope="module")
def git_dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(URL, commit) of the package `gitdep` on a git server on 127.0.0.1."""
    root = tmp_path_factory.mktemp("git-sources")
    repo = git_package(root / "gitdep", "gitdep")
    server = PrivateGitServer(root / "gitdep", None).start()
    yield server.url("remote.git"), repo.git("rev-parse", "HEAD")
    server.stop()


def _host_python() -> str:
    """The exact version of the interpreter uv picks here by default (a pin the host can meet)."""
    path = subprocess.run(
        ["uv", "python", "find", "--system"], capture_output=True, text=True, check=True, cwd="/"
    ).stdout.strip()
    code = "import platform; print(platform.python_version())"
    return subprocess.run(
        [path, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


SHAPES: dict[str, Callable[[tuple[str, str]], Build]] = {
    "dbt": lambda _git: dbt_namespace,
    "workspace root": lambda _git: lambda r, i: workspace(r, i)[:1],
    "workspace member": lambda _git: lambda r, i: workspace(r, i)[1:],
    "python-version": lambda _git: lambda r, i: python_pinned(r, i, _host_python()),
    "git source": lambda git: lambda r, i: git_source(r, i, *git),
    "virtual sub-folder": lambda _git: virtual_subfolder,
    "sdist-only": lambda _git: sdist_only,
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_shape_prepares_verifies_hits_and_its_flow_imports(
    name: str,
    tmp_path: Path,
    corpus_index: LocalIndex,
    git_dep: tuple[str, str],
    settings: SyncSettings,
) -> None:
    repo = PipelineRepo(tmp_path / "repo")
    (shape,) = SHAPES[name](git_dep)(repo, corpus_index)
    repo.commit(shape.name)
    first = prep(settings, repo.url, "main", project_dir=shape.project_dir)
    assert first.built and not first.healed
    assert run_flow(first, shape.flow) == shape.prints
    deep = run_cli("verify", "--deep", "--cache-dir", str(settings.cache_dir))
    assert deep.returncode == 0, deep.stdout
    again = prep(settings, repo.url, "main", project_dir=shape.project_dir)
    assert again.cache_hit and again.env_key == first.env_key
    assert run_flow(again, shape.flow) == shape.prints
