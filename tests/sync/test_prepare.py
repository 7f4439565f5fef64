"""What `prepare` gives for branches, tags, SHAs, subfolders, shared locks and code-only commits."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sunbeam_sync import SyncSettings
from sunbeam_sync.cache.layout import CacheLayout
from tests.support.sync_project import Project, env_python, prep, run_cli


def test_branch_with_new_dependency_gets_it(project: Project, settings: SyncSettings) -> None:
    main = prep(settings, project.repo.url, "main")
    assert main.built and not main.cache_hit
    assert env_python(main, "import alpha; print(alpha.__version__)") == "1.0"

    project.repo.checkout("feature", create=True)
    project.set_deps(["alpha==1.0", "beta==1.0"])
    project.repo.commit("add beta", branch="feature")
    feature = prep(settings, project.repo.url, "feature")
    assert feature.built and feature.env_key != main.env_key
    assert env_python(feature, "import beta; print(beta.__version__)") == "1.0"
    # main's env did not get beta: envs are per lock
    assert "ModuleNotFoundError" in _import_error(main, "beta")


def _import_error(result, module: str) -> str:  # type: ignore[no-untyped-def]
    import subprocess

    out = subprocess.run([result.python, "-c", f"import {module}"], capture_output=True, text=True)
    return out.stderr


def test_same_lock_on_two_refs_shares_one_env(project: Project, settings: SyncSettings) -> None:
    first = prep(settings, project.repo.url, "main")
    project.repo.checkout("other", create=True)
    project.write_code("print('other code, same lock')\n")
    project.repo.commit("code only", branch="other")
    second = prep(settings, project.repo.url, "other")
    assert second.env_key == first.env_key and second.env == first.env
    assert second.cache_hit and not second.built  # a code-only change never builds
    assert second.commit != first.commit and second.checkout != first.checkout
    assert (Path(second.checkout) / "flows.py").read_text() == "print('other code, same lock')\n"


def test_tags_full_and_abbreviated_shas(project: Project, settings: SyncSettings) -> None:
    sha = project.repo.git("rev-parse", "HEAD")
    project.repo.tag("v1.0")
    by_tag = prep(settings, project.repo.url, "v1.0")
    by_sha = prep(settings, project.repo.url, sha)
    by_short = prep(settings, project.repo.url, sha[:9])
    assert by_tag.commit == by_sha.commit == by_short.commit == sha
    assert by_tag.checkout == by_sha.checkout  # one checkout per commit
    assert by_sha.cache_hit and by_short.cache_hit


def test_project_in_subfolder(project: Project, settings: SyncSettings) -> None:
    project.subdir = "pipeline"
    project.set_deps(["gamma==1.0"])
    project.repo.write("pipeline/src/sunbeam_demo/__init__.py", "X = 1\n")
    project.repo.commit("subfolder project")
    result = prep(settings, project.repo.url, "main", project_dir="pipeline")
    assert result.checkout.endswith("/pipeline")
    assert result.pythonpath[0].endswith("/pipeline/src")
    assert env_python(result, "import gamma; print(gamma.__version__)") == "1.0"


def test_cli_json_contract(project: Project, tmp_path: Path) -> None:
    res = run_cli(
        "prepare", project.repo.url, "--ref", "main", "--cache-dir", str(tmp_path / "c"), "--json"
    )
    assert res.returncode == 0, res.stderr
    data = res.json
    for field in (
        "repo",
        "ref",
        "commit",
        "checkout",
        "env_key",
        "env",
        "python",
        "cache_hit",
        "built",
        "healed",
        "timings",
    ):
        assert field in data
    assert len(data["commit"]) == 40 and data["built"] is True and data["healed"] is False
    assert set(data["timings"]) >= {"fetch", "checkout", "verify", "build"}
    assert "[uv]" in res.stderr and "[git]" in res.stderr  # progress streams on stderr
    again = run_cli(
        "prepare", project.repo.url, "--ref", "main", "--cache-dir", str(tmp_path / "c"), "--json"
    )
    assert again.json["cache_hit"] is True and again.json["built"] is False


def test_unknown_ref_names_ref_and_repo(project: Project, tmp_path: Path) -> None:
    res = run_cli(
        "prepare", project.repo.url, "--ref", "no-such-branch", "--cache-dir", str(tmp_path / "c")
    )
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()[-1]
    assert "no-such-branch" in err and project.repo.url in err
    assert "Traceback" not in res.stderr


def test_commit_on_no_branch_or_tag_is_fetched_by_sha(
    project: Project, settings: SyncSettings
) -> None:
    # A pull request's head: reachable only through refs/pull/*, which mirrors don't fetch.
    project.repo.checkout("pr", create=True)
    project.write_code("print('from a pull request')\n")
    project.repo.git("add", "-A")
    project.repo.git("commit", "-q", "-m", "pr")
    sha = project.repo.git("rev-parse", "HEAD")
    project.repo.git("push", "-q", "origin", "HEAD:refs/pull/1/head")
    project.repo.git(
        "--git-dir", str(project.repo.remote), "config", "uploadpack.allowAnySHA1InWant", "true"
    )
    result = prep(settings, project.repo.url, sha)
    assert result.commit == sha
    assert "pull request" in (Path(result.checkout) / "flows.py").read_text()


def test_a_pinned_commit_runs_as_its_ref_after_the_ref_moved(
    project: Project, settings: SyncSettings, caplog: pytest.LogCaptureFixture
) -> None:
    first = prep(settings, project.repo.url, "main")
    project.set_deps(["alpha==2.0"])
    moved = project.repo.commit("alpha 2")
    caplog.set_level(logging.INFO, logger="sunbeam_sync")
    again = prep(settings, project.repo.url, "main", commit=first.commit[:10])
    assert (again.ref, again.commit, again.env_key) == ("main", first.commit, first.env_key)
    assert env_python(again, "import alpha; print(alpha.__version__)") == "1.0"
    said = f"running main at commit {first.commit}, as asked (a rerun); main is now at {moved}"
    assert said in caplog.text
    usage = json.loads(CacheLayout.open(settings.cache_dir).usage_record(first.env_key).read_text())
    assert set(usage["refs"]) == {"main"}  # filed under the ref, never under a SHA


def test_the_log_compares_a_new_env_with_the_default_branchs(
    project: Project, settings: SyncSettings, caplog: pytest.LogCaptureFixture
) -> None:
    main = prep(settings, project.repo.url, "main")  # main: alpha 1.0
    project.repo.checkout("lookalike", create=True)
    project.set_deps(["alpha==2.0", "beta==1.0"])
    project.repo.commit("closer by packages than main", branch="lookalike")
    prep(settings, project.repo.url, "lookalike")
    project.repo.checkout("feature", create=True)
    project.set_deps(["alpha==2.0", "beta==1.0", "gamma==1.0"])
    project.repo.commit("adds gamma", branch="feature")
    caplog.set_level(logging.INFO, logger="sunbeam_sync")
    prep(settings, project.repo.url, "feature")
    assert "differs from main's env" in _diff_line(caplog)
    assert "+ beta 1.0, + gamma 1.0, ~ alpha 1.0 -> 2.0" in _diff_line(caplog)
    # No env of the default branch: the closest by packages, and the line says so.
    CacheLayout.open(settings.cache_dir).usage_record(main.env_key).unlink()
    caplog.clear()
    project.set_deps(["alpha==2.0", "gamma==1.0"])
    project.repo.commit("drops beta", branch="feature")
    prep(settings, project.repo.url, "feature")
    assert "differs from the closest env by packages" in _diff_line(caplog)
    assert "- beta 1.0; 2 packages unchanged" in _diff_line(caplog)


def _diff_line(caplog: pytest.LogCaptureFixture) -> str:
    return next(r.getMessage() for r in caplog.records if "differs from" in r.getMessage())
