"""Unreachable remotes and indexes: offline fallbacks, retries, and messages that name the cause."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sunbeam_sync import NetworkError, SyncSettings
from tests.support.gitserver import PrivateGitServer
from tests.support.pyindex import LocalIndex
from tests.support.sync_project import Project, env_python, prep, run_cli
from tests.support.wheels import build_wheel


def test_known_sha_prepares_with_remote_gone(project: Project, settings: SyncSettings) -> None:
    first = prep(settings, project.repo.url, "main")
    shutil.rmtree(project.repo.remote)
    again = prep(settings, project.repo.url, first.commit)
    assert again.commit == first.commit and again.cache_hit
    res = run_cli(
        "prepare", project.repo.url, "--ref", "main", "--cache-dir", str(settings.cache_dir)
    )
    assert res.returncode == 1  # a branch needs the remote: git failure, not bad input
    assert project.repo.url in res.stderr and len(res.stderr.strip().splitlines()[-1]) < 300


def test_unreachable_git_server_is_retried_then_reported(
    project: Project, settings: SyncSettings, tmp_path: Path
) -> None:
    url = "http://127.0.0.1:9/nothing-listens-here.git"  # port 9 (discard): connection refused
    with pytest.raises(NetworkError) as info:
        prep(settings, url, "main")
    assert "after 3 attempts" in str(info.value) and url in str(info.value)


@pytest.fixture
def own_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    idx = LocalIndex(tmp_path / "own-index").start()
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "own-uv-cache"))
    yield idx
    idx.stop()


def test_index_down_builds_offline_from_uv_cache(
    project: Project, settings: SyncSettings, own_index: LocalIndex, tmp_path: Path
) -> None:
    own_index.add(build_wheel(tmp_path / "w", "delta", "1.0"))
    own_index.add(build_wheel(tmp_path / "w", "epsilon", "1.0"))
    project.index = own_index
    project.set_deps(["delta==1.0"])
    project.repo.commit("delta")
    prep(settings, project.repo.url, "main")  # warms uv's cache with delta
    project.repo.checkout("other", create=True)
    project.set_deps(["delta==1.0"], name="pipeline-two")  # same packages, different lock bytes
    project.repo.commit("renamed project", branch="other")
    project.repo.checkout("main")
    project.repo.checkout("third", create=True)
    project.set_deps(["delta==1.0", "epsilon==1.0"])
    project.repo.commit("needs epsilon, never downloaded", branch="third")

    own_index.stop()
    result = prep(settings, project.repo.url, "other")
    assert result.built  # a new key, built with the index down
    assert env_python(result, "import delta; print(delta.__version__)") == "1.0"

    with pytest.raises(NetworkError) as info:
        prep(settings, project.repo.url, "third")
    assert "epsilon" in str(info.value) and "unreachable" in str(info.value)
    assert not [p for p in Path(settings.cache_dir, "envs").iterdir() if p.name.startswith(".tmp")]


TOKEN = "sunbeam-test-token-9f8e7d6c5b4a"


def test_private_remote_with_token_never_leaks_it(project: Project, tmp_path: Path) -> None:
    server = PrivateGitServer(project.repo.remote.parent, TOKEN).start()
    try:
        url = server.url("remote.git")
        cache = tmp_path / "cache"
        denied = run_cli("prepare", url, "--ref", "main", "--cache-dir", str(cache))
        assert denied.returncode == 1 and "SUNBEAM_GIT_TOKEN" in denied.stderr
        ok = run_cli(
            "prepare",
            url,
            "--ref",
            "main",
            "--cache-dir",
            str(cache),
            "--json",
            env={"SUNBEAM_GIT_TOKEN": TOKEN},
        )
        assert ok.returncode == 0, ok.stderr
        assert any("auth=yes" in r for r in server.requests)  # the token really was used
        listing = run_cli(
            "list", "--cache-dir", str(cache), "--json", env={"SUNBEAM_GIT_TOKEN": TOKEN}
        )
        for text in (denied.stdout, denied.stderr, ok.stdout, ok.stderr, listing.stdout):
            assert TOKEN not in text
        for path in cache.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert TOKEN.encode() not in path.read_bytes(), path
    finally:
        server.stop()
