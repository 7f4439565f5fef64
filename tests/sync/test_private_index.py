"""A package index that wants credentials (run/index_auth.py): uv reads them from
UV_INDEX_<NAME>_USERNAME / _PASSWORD; without them, or with wrong ones, one line names the index,
the package and the variables to set, and no value ever reaches a log, a message or the cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sunbeam_sync.run.index_auth import index_auth_error, index_variables
from tests.support.gitrepo import PipelineRepo
from tests.support.pyindex import LocalIndex
from tests.support.sync_project import CliResult, Project, run_cli
from tests.support.wheels import build_wheel

PASSWORD = "idx-pw-0a9b8c7d6e"


@pytest.fixture
def team_index(tmp_path: Path) -> Iterator[LocalIndex]:
    """The team's index (named `local` in pyproject.toml), open while the developer locks."""
    index = LocalIndex(tmp_path / "index").start()
    index.add(build_wheel(tmp_path / "wheels", "alpha", "1.0"))
    yield index
    index.stop()


@pytest.fixture
def project(tmp_path: Path, team_index: LocalIndex) -> Project:
    proj = Project(PipelineRepo(tmp_path / "repo"), team_index)
    proj.set_deps(["alpha==1.0"])
    proj.repo.commit("alpha from the team's index")
    team_index.auth = f"team:{PASSWORD}"  # from now on, only with credentials
    return proj


def _prepare(project: Project, tmp_path: Path, **credentials: str) -> CliResult:
    env = {"UV_CACHE_DIR": str(tmp_path / "agent-uv-cache"), **credentials}  # alpha not cached
    cache = tmp_path / "cache"
    return run_cli("prepare", project.repo.url, "--ref", "main", "--cache-dir", str(cache), env=env)


def test_an_index_wanting_credentials_says_which_variables_to_set(
    project: Project, team_index: LocalIndex, tmp_path: Path
) -> None:
    res = _prepare(project, tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    error = res.stderr.strip().splitlines()[-1]
    origin = team_index.url.removesuffix("/simple")
    assert error == (
        f"sunbeam-sync: error: the package index at {origin} refused alpha==1.0 (401 "
        "Unauthorized): it needs credentials; give the agent UV_INDEX_LOCAL_USERNAME and "
        "UV_INDEX_LOCAL_PASSWORD (the index named 'local' in pyproject.toml)"
    )
    assert [p.name for p in (tmp_path / "cache" / "envs").iterdir()] == []


def test_wrong_credentials_are_named_never_shown_and_right_ones_build(
    project: Project, team_index: LocalIndex, tmp_path: Path
) -> None:
    wrong = "not-the-password-31337"
    res = _prepare(project, tmp_path, UV_INDEX_LOCAL_USERNAME="team", UV_INDEX_LOCAL_PASSWORD=wrong)
    assert res.returncode == 1, res.stderr
    error = res.stderr.strip().splitlines()[-1]
    assert "with the credentials in UV_INDEX_LOCAL_USERNAME / UV_INDEX_LOCAL_PASSWORD" in error
    assert "check them" in error and wrong not in res.stderr + res.stdout
    ok = _prepare(
        project, tmp_path, UV_INDEX_LOCAL_USERNAME="team", UV_INDEX_LOCAL_PASSWORD=PASSWORD
    )
    assert ok.returncode == 0, ok.stderr
    assert any("alpha" in r and "auth=yes" in r for r in team_index.requests)
    assert PASSWORD not in ok.stderr + ok.stdout
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_an_unnamed_index_is_told_to_get_a_name_and_names_become_uvs_variables(
    tmp_path: Path,
) -> None:
    said = (
        "error: Failed to download `alpha==1.0`\n  cause: HTTP status client error "
        "(403 Forbidden) for url (https://pkgs.example/files/alpha-1.0-py3-none-any.whl)"
    )
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[[tool.uv.index]]\nurl = "https://pkgs.example/simple"\n')
    assert str(index_auth_error(said, [pyproject], "alpha==1.0")) == (
        "the package index at https://pkgs.example refused alpha==1.0 (403 Forbidden): name "
        'that index in pyproject.toml ([[tool.uv.index]] name = "…") and give the agent '
        "UV_INDEX_<NAME>_USERNAME and UV_INDEX_<NAME>_PASSWORD"
    )
    assert index_variables("team-pkgs.v2") == (
        "UV_INDEX_TEAM_PKGS_V2_USERNAME",
        "UV_INDEX_TEAM_PKGS_V2_PASSWORD",
    )
    assert index_auth_error("error: Failed to download `alpha==1.0`", [pyproject], "a") is None
