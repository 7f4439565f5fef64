"""Hostile refs, bad URLs and broken projects: a one-line error, exit 2, nothing changed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sunbeam_sync import LockfileError, SyncSettings, cli
from sunbeam_sync.cache.layout import CacheLayout
from tests.support.gated_sdist import waiting_sdist
from tests.support.pyindex import LocalIndex
from tests.support.sync_project import Project, prep, run_cli
from tests.support.wheels import build_wheel

HOSTILE_REFS = [
    "--upload-pack=touch /tmp/pwned",
    "-x",
    "main..feature",
    "../../etc/passwd",
    "main\nfeature",
    "main\x07",
    "main;rm -rf /",
    "$(touch /tmp/pwned)",
    "`id`",
    "a|b",
    "a&b",
    "a>b",
    "a b",
    "x" * 256,
    ".hidden",
    "branch.lock",
    "trailing/",
    "a//b",
    "@{-1}",
    "",
]


@pytest.mark.parametrize("ref", HOSTILE_REFS, ids=lambda r: repr(r[:24]))
def test_hostile_ref_is_rejected_before_git(
    project: Project, tmp_path: Path, ref: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    # In-process (same code path as the command, without paying interpreter start-up 20 times).
    code = cli.main(["prepare", project.repo.url, "--ref", ref, "--cache-dir", str(cache)])
    res = capsys.readouterr()
    assert code == 2, res.err
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sunbeam-sync: error:")
    assert "Traceback" not in res.err
    assert not cache.exists()  # nothing was created: git never ran
    assert not Path("/tmp/pwned").exists()


@pytest.mark.parametrize(
    "repo",
    [
        "--upload-pack=evil",
        "ext::sh -c touch% /tmp/pwned",
        "https://user:secret@example.invalid/repo.git",
        "ftp://example.invalid/repo.git",
        "/no/such/folder",
        "",
    ],
)
def test_bad_repository_is_rejected(tmp_path: Path, repo: str) -> None:
    res = run_cli("prepare", repo, "--ref", "main", "--cache-dir", str(tmp_path / "cache"))
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1
    assert "secret" not in res.stderr
    assert not (tmp_path / "cache").exists()


def test_bad_project_dir(project: Project, tmp_path: Path) -> None:
    for bad in ("../outside", "/etc", "no/such/folder"):
        res = run_cli(
            "prepare",
            project.repo.url,
            "--ref",
            "main",
            "--project-dir",
            bad,
            "--cache-dir",
            str(tmp_path / "c"),
        )
        assert res.returncode == 2 and "project folder" in res.stderr, res.stderr


def _refused_before_building(project: Project, tmp_path: Path, cause: str) -> None:
    """`prepare` of main exits 2 naming `cause` and the fix (`uv lock`), and builds no env."""
    res = run_cli("prepare", project.repo.url, "--ref", "main", "--cache-dir", str(tmp_path / "c"))
    assert res.returncode == 2
    assert cause in res.stderr and "uv lock" in res.stderr
    assert not list((tmp_path / "c" / "envs").iterdir())


def test_missing_lock(project: Project, tmp_path: Path) -> None:
    project.repo.git("rm", "-q", "uv.lock")
    project.repo.commit("drop the lock")
    _refused_before_building(project, tmp_path, "no uv.lock")


def test_lock_out_of_date_is_reported_before_building(project: Project, tmp_path: Path) -> None:
    project.set_deps(["alpha==1.0", "beta==1.0"], lock=False)  # pyproject changed, lock did not
    project.repo.commit("forgot to re-lock")
    _refused_before_building(project, tmp_path, "out of date")


def test_broken_lock(project: Project, tmp_path: Path) -> None:
    project.repo.write("uv.lock", "version = 1\n[[package]\nname = broken")
    project.repo.commit("corrupt lock")
    res = run_cli("prepare", project.repo.url, "--ref", "main", "--cache-dir", str(tmp_path / "c"))
    assert res.returncode == 2 and "uv.lock" in res.stderr
    assert len(res.stderr.strip().splitlines()[-1]) < 400


def test_bad_cli_usage_is_one_line(tmp_path: Path) -> None:
    res = run_cli("prepare", "somewhere")  # --ref missing
    assert res.returncode == 2 and "--ref" in res.stderr
    res = run_cli("gc", "--max-bytes", "lots", "--cache-dir", str(tmp_path))
    assert res.returncode == 2 and "not a size" in res.stderr


def test_lock_without_a_required_package_fails_before_building(
    project: Project, tmp_path: Path
) -> None:
    res = run_cli(
        "prepare",
        project.repo.url,
        "--ref",
        "main",
        "--require",
        "Pre_fect",
        "--cache-dir",
        str(tmp_path / "c"),
    )
    assert res.returncode == 2
    assert "does not include Pre_fect" in res.stderr and "uv lock" in res.stderr
    assert not list((tmp_path / "c" / "envs").iterdir())  # nothing was built
    ok = run_cli(
        "prepare",
        project.repo.url,
        "--ref",
        "main",
        "--require",
        "alpha",
        "--cache-dir",
        str(tmp_path / "c"),
    )
    assert ok.returncode == 0, ok.stderr


def test_stale_lock_is_refused_on_a_cache_hit_and_a_pass_remembered(
    project: Project, settings: SyncSettings
) -> None:
    """pyproject.toml gains beta, uv.lock stays as it was: same lock bytes, so the env is a hit."""
    prep(settings, project.repo.url, "main")  # built: its lock check passed, and is remembered
    passed = list(CacheLayout.open(settings.cache_dir).state.glob("lock-ok-*"))
    assert len(passed) == 1
    project.write_code("print('code only')\n")
    project.repo.commit("code only")
    assert prep(settings, project.repo.url, "main").cache_hit  # the remembered pass: no check
    project.set_deps(["alpha==1.0", "beta==1.0"], lock=False)
    stale = project.repo.commit("forgot to re-lock")
    with pytest.raises(LockfileError) as caught:
        prep(settings, project.repo.url, "main")
    message = str(caught.value)
    assert "out of date with pyproject.toml (beta in pyproject.toml, not in uv.lock)" in message
    assert "run `uv lock` and commit uv.lock" in message
    assert caught.value.commit == stale  # the caller can still name the commit that failed
    assert list(CacheLayout.open(settings.cache_dir).state.glob("lock-ok-*")) == passed


def test_lock_uv_cannot_parse_names_uvs_cause(project: Project, tmp_path: Path) -> None:
    lock = (project.repo.work / "uv.lock").read_text()
    broken = lock.replace('name = "alpha"\nversion = "', 'name = "alpha"\nversion = "x', 1)
    assert broken != lock  # still TOML: only uv can say what is wrong with it
    project.repo.write("uv.lock", broken)
    project.repo.commit("hand-edited lock")
    res = run_cli("prepare", project.repo.url, "--ref", "main", "--cache-dir", str(tmp_path / "c"))
    assert res.returncode == 2
    error = res.stderr.strip().splitlines()[-1]
    assert "uv.lock cannot be parsed: TOML parse error at line" in error, error
    assert "expected version to start with a number" in error, error


def test_requires_python_no_interpreter_has(project: Project, tmp_path: Path) -> None:
    text = (project.repo.work / "pyproject.toml").read_text()
    project.repo.write("pyproject.toml", text.replace('">=3.11"', '">=3.99"'))
    project.repo.commit("needs a future Python")
    res = run_cli("prepare", project.repo.url, "--ref", "main", "--cache-dir", str(tmp_path / "c"))
    assert res.returncode == 2
    error = res.stderr.strip().splitlines()[-1]
    have = f"{sys.version_info.major}.{sys.version_info.minor}."
    assert "the project requires Python >=3.99 (requires-python in pyproject.toml)" in error
    assert f"this agent has Python {have}" in error and "SUNBEAM_PYTHON" in error, error


def test_file_url_climbing_out_of_its_folder_is_refused_before_git(
    project: Project, tmp_path: Path
) -> None:
    # Issue 23 §5: `..` in a file:// URL is judged after normalising, like a plain path is.
    repo = Path(project.repo.url.removeprefix("file://"))
    climb = "/..".join([""] * (len(repo.parts)))  # as many `..` as it takes to reach /
    cache = tmp_path / "cache"
    hostile = (
        f"file://{repo}/../../etc",  # leads nowhere on disk: git used to say "not found" (exit 1)
        f"file://{repo}{climb}/etc",  # leads to /etc itself
        f"file://{repo}/%2e%2e/%2E%2E/etc",  # the same, percent-encoded
    )
    for url in hostile:
        res = run_cli("prepare", url, "--ref", "main", "--cache-dir", str(cache))
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sunbeam-sync: error:"), res.stderr
        assert "'..'" in lines[0] and "/etc" in lines[0], lines[0]
        assert not cache.exists()  # no mirror, no cache: git never ran
    # Other segments are only normalised: the repository itself is prepared.
    same = f"file://{repo}/./"
    assert run_cli("prepare", same, "--ref", "main", "--cache-dir", str(cache)).returncode == 0


def test_a_package_whose_pth_stops_python_is_not_published(
    project: Project, index: LocalIndex, tmp_path: Path
) -> None:
    """Python runs a package's `.pth` at every start: one that ends the interpreter would fail
    every run of every commit sharing the env. The build says so, naming Python's own words."""
    stop = "import sys; sys.stderr.write('startbreak says no\\n'); import os; os._exit(7)\n"
    index.add(build_wheel(tmp_path / "wheels", "startbreak", "1.0", files={"startbreak.pth": stop}))
    project.set_deps(["alpha==1.0", "startbreak==1.0"])
    project.repo.commit("a package whose .pth stops Python")
    cache = tmp_path / "c"
    res = run_cli("prepare", project.repo.url, "--ref", "main", "--cache-dir", str(cache))
    assert res.returncode == 1, res.stderr
    error = res.stderr.strip().splitlines()[-1]
    assert "the new environment's interpreter does not start (startbreak says no)" in error, error
    assert ".pth files the lock's packages install" in error and "Traceback" not in res.stderr
    assert [p.name for p in (cache / "envs").iterdir()] == []  # nothing published, nothing left


def test_a_package_that_fails_to_build_names_the_package_and_its_own_words(
    project: Project, index: LocalIndex, tmp_path: Path
) -> None:
    """An sdist whose build needs what the host lacks (a header, `pg_config`): one line with the
    package and the build's last error, which is where its fix is; nothing published."""
    fail = "    raise SystemExit('error: pg_config executable not found; install libpq-dev')"
    (tmp_path / "sdists").mkdir()
    index.add(waiting_sdist(tmp_path / "sdists", "needsc", "1.0", fail))
    project.set_deps(["alpha==1.0", "needsc==1.0"])
    project.repo.commit("a package whose build fails here")
    cache = tmp_path / "c"
    res = run_cli("prepare", project.repo.url, "--ref", "main", "--cache-dir", str(cache))
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    error = res.stderr.strip().splitlines()[-1]
    assert error.startswith("sunbeam-sync: error: uv sync failed: Failed to build `needsc==1.0`")
    assert error.endswith("pg_config executable not found; install libpq-dev"), error
    assert [p.name for p in (cache / "envs").iterdir()] == []
