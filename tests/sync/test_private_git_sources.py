"""A lock's git sources on a private host (git/sources.py): the pipeline's own host gets them
through our mirrors with SUNBEAM_GIT_TOKEN, which never reaches uv or a build backend; any other
host never sees the token, and its refusal is one line naming the rule and the fix."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.corpus import IN_TREE_BACKEND, git_source, write_shape
from tests.support.gated_sdist import backend_py
from tests.support.gitrepo import PipelineRepo
from tests.support.gitserver import PrivateGitServer
from tests.support.pyindex import LocalIndex
from tests.support.sync_project import run_cli

TOKEN = "sunbeam-test-token-5e4d3c2b1a"
# The git package's build backend writes the environment it was started with (uv's) here.
SPY = "    Path(os.environ.get('SUNBEAM_TEST_SPY', os.devnull)).write_text(repr(dict(os.environ)))"


def _spying_package(root: Path) -> PipelineRepo:
    dep = PipelineRepo(root)
    dep.write(
        "pyproject.toml", '[project]\nname = "gitdep"\nversion = "0.1.0"\n\n' + IN_TREE_BACKEND
    )
    dep.write("backend.py", backend_py("gitdep", "0.1.0", SPY))
    dep.commit("gitdep 0.1.0")
    return dep


def _pipeline_using_gitdep(
    pipeline: Path, deps: PrivateGitServer, index: LocalIndex, env: pytest.MonkeyPatch
) -> tuple[str, PipelineRepo]:
    """A pipeline repository at `pipeline` whose lock pins `gitdep` from `deps`: gitdep's URL
    and repository.

    The developer locks with their own access and uv cache (the server lets everyone in
    meanwhile); the agent's uv cache, set afterwards, has never seen gitdep."""
    dep = _spying_package(deps.root / "gitdep")
    url, commit = deps.url("gitdep/remote.git"), dep.git("rev-parse", "HEAD")
    expected, deps.expected = deps.expected, None
    try:
        env.setenv("UV_CACHE_DIR", str(pipeline.parent / "developer-uv-cache"))
        write_shape(lambda r, i: git_source(r, i, url, commit), PipelineRepo(pipeline), index)
    finally:
        deps.expected = expected
    env.setenv("UV_CACHE_DIR", str(pipeline.parent / "agent-uv-cache"))
    deps.requests.clear()
    return url, dep


@pytest.fixture
def private_host(
    tmp_path: Path, index: LocalIndex, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[PrivateGitServer, str, PipelineRepo]]:
    """One private host serving the pipeline and gitdep, which the pipeline's lock pins:
    (the host, gitdep's URL, gitdep's repository)."""
    server = PrivateGitServer(tmp_path / "host", TOKEN).start()
    try:
        dep_url, dep = _pipeline_using_gitdep(server.root / "pipeline", server, index, monkeypatch)
        yield server, dep_url, dep
    finally:
        server.stop()


def test_a_git_source_on_the_pipelines_private_host_builds_and_the_token_stays_with_us(
    private_host: tuple[PrivateGitServer, str, PipelineRepo], tmp_path: Path
) -> None:
    server, dep_url, _dep = private_host
    spy, cache = tmp_path / "backend-environ.txt", tmp_path / "cache"
    env = {"SUNBEAM_GIT_TOKEN": TOKEN, "SUNBEAM_TEST_SPY": str(spy)}
    url = server.url("pipeline/remote.git")
    ok = run_cli("prepare", url, "--ref", "main", "--cache-dir", str(cache), "--json", env=env)
    assert ok.returncode == 0, ok.stderr
    assert f"gitdep: uv reads {dep_url} from mirror" in ok.stderr
    assert any(r.startswith("POST /gitdep/") and "auth=yes" in r for r in server.requests)
    assert spy.is_file() and TOKEN not in spy.read_text()  # the backend ran, without it
    for text in (ok.stdout, ok.stderr):
        assert TOKEN not in text
    for path in cache.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert TOKEN.encode() not in path.read_bytes(), path
    python = Path(ok.json["env"]) / "bin" / "python"
    shown = subprocess.run(
        [str(python), "-c", "import gitdep; print(gitdep.__version__)"],
        capture_output=True,
        text=True,
    )
    assert shown.stdout.strip() == "0.1.0", shown.stderr


@pytest.mark.parametrize("token", [TOKEN, None], ids=["token-set", "no-token"])
def test_a_private_git_source_elsewhere_never_gets_the_token_and_says_why(
    token: str | None, index: LocalIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    public = PrivateGitServer(tmp_path / "public", None).start()  # the pipeline's host
    other = PrivateGitServer(tmp_path / "other", TOKEN).start()  # gitdep's, another port
    try:
        dep_url, _ = _pipeline_using_gitdep(public.root / "pipeline", other, index, monkeypatch)
        env = {"SUNBEAM_GIT_TOKEN": token} if token else {}
        url, cache = public.url("pipeline/remote.git"), tmp_path / "cache"
        res = run_cli("prepare", url, "--ref", "main", "--cache-dir", str(cache), env=env)
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
        error = res.stderr.strip().splitlines()[-1]
        assert f"the git repository of gitdep ({dep_url}) asks for credentials" in error, error
        assert "pipeline repository's own host only" in error and "package index" in error
        assert other.requests and all("auth=no" in r for r in other.requests)
        assert [p.name for p in (cache / "envs").iterdir()] == []
    finally:
        public.stop()
        other.stop()


def test_a_private_git_sources_missing_commit_or_refusal_names_the_package(
    private_host: tuple[PrivateGitServer, str, PipelineRepo], tmp_path: Path
) -> None:
    server, dep_url, dep = private_host
    commit = dep.git("rev-parse", "HEAD")
    url, cache = server.url("pipeline/remote.git"), str(tmp_path / "cache")
    dep.rewrite_history()
    gone = run_cli(
        "prepare", url, "--ref", "main", "--cache-dir", cache, env={"SUNBEAM_GIT_TOKEN": TOKEN}
    )
    assert gone.returncode == 2, gone.stderr
    assert gone.stderr.strip().splitlines()[-1] == (
        f"sunbeam-sync: error: uv.lock pins gitdep to commit {commit[:12]} of {dep_url}, which "
        "that repository does not have (history rewritten, or the commit never pushed): push "
        "that commit there, or run `uv lock --upgrade-package gitdep` and commit uv.lock"
    )
    server.refused.add("gitdep/remote.git")  # the token may no longer read gitdep
    refused = run_cli(
        "prepare", url, "--ref", "main", "--cache-dir", cache, env={"SUNBEAM_GIT_TOKEN": TOKEN}
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        f"sunbeam-sync: error: git source gitdep: git could not authenticate to {dep_url}: set "
        "SUNBEAM_GIT_TOKEN to a token with read access"
    )
