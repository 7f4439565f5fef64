"""Issue 11 §5: symlinks, lock sources outside the repository, option-like URLs, bad settings.

Each answer is one line on stderr, exit 2, naming what is wrong and what is accepted, and
nothing is built (an unused link in the repository, on the other hand, must not block anything).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sunbeam_sync import cli
from tests.support.gitrepo import PipelineRepo
from tests.support.sync_project import Project, pyproject, run_cli
from tests.support.wheels import build_wheel


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert code != 2 or (len(lines) == 1 and lines[0].startswith("sunbeam-sync: error:")), err
    return code, err


def _prepare(project: Project, cache: Path, *args: str) -> object:
    return run_cli("prepare", project.repo.url, "--ref", "main", "--cache-dir", str(cache), *args)


def _built(cache: Path) -> list[str]:
    envs = cache / "envs"
    return [p.name for p in envs.iterdir() if not p.name.startswith(".")] if envs.exists() else []


# ---------------------------------------------------------------------------- symlinks
def test_unused_escaping_symlinks_do_not_block_prepare(project: Project, tmp_path: Path) -> None:
    os.symlink("/etc/passwd", project.repo.work / "absolute-link")
    os.symlink("../../../..", project.repo.work / "escaping-link")
    (project.repo.work / "docs").mkdir()
    os.symlink("../flows.py", project.repo.work / "docs" / "inside-link")
    project.repo.commit("links")
    res = _prepare(project, tmp_path / "c", "--json")
    assert res.returncode == 0, res.stderr
    checkout = Path(res.json["checkout"])
    assert (checkout / "docs" / "inside-link").read_text() == "print('hello')\n"
    assert "absolute-link" in res.stderr  # said what it did with the links it does not follow


@pytest.mark.parametrize("name", ["uv.lock", "pyproject.toml"])
def test_project_file_leading_outside_is_refused(
    project: Project, tmp_path: Path, name: str
) -> None:
    outside = tmp_path / f"outside-{name}"
    outside.write_bytes((project.repo.work / name).read_bytes())
    (project.repo.work / name).unlink()
    os.symlink(str(outside), project.repo.work / name)
    project.repo.commit(f"{name} is a link out")
    res = _prepare(project, tmp_path / "c")
    assert res.returncode == 2, res.stderr
    assert name in res.stderr and "outside" in res.stderr
    assert len(res.stderr.strip().splitlines()[-1]) < 400
    assert not _built(tmp_path / "c")


def test_project_dir_leading_outside_is_refused(project: Project, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pyproject.toml").write_text((project.repo.work / "pyproject.toml").read_text())
    (elsewhere / "uv.lock").write_text((project.repo.work / "uv.lock").read_text())
    os.symlink(str(elsewhere), project.repo.work / "sub")
    project.repo.commit("project folder is a link out")
    res = _prepare(project, tmp_path / "c", "--project-dir", "sub")
    assert res.returncode == 2, res.stderr
    assert "project folder" in res.stderr and "outside" in res.stderr
    assert not _built(tmp_path / "c")


# ------------------------------------------------------------- lock sources outside the repo
def _lock_with_source(project: Project, source: str) -> None:
    text = pyproject(["alpha"], project.index.url) + f"\n[tool.uv.sources]\nalpha = {source}\n"
    (project.repo.work / "pyproject.toml").write_text(text)
    subprocess.run(
        ["uv", "lock", "-q", "--project", str(project.repo.work)], check=True, capture_output=True
    )
    project.repo.commit("alpha from outside")


def test_path_wheel_outside_the_repository_is_refused(project: Project, tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "outside-wheels", "alpha", "1.0")
    _lock_with_source(project, f'{{ path = "{wheel}" }}')
    res = _prepare(project, tmp_path / "c")
    assert res.returncode == 2, res.stderr
    assert "alpha" in res.stderr and "outside the repository" in res.stderr
    assert "SUNBEAM_ALLOW_EXTERNAL_SOURCES" in res.stderr
    assert not _built(tmp_path / "c")
    allowed = run_cli(
        "prepare", project.repo.url, "--ref", "main", "--cache-dir", str(tmp_path / "c"),
        env={"SUNBEAM_ALLOW_EXTERNAL_SOURCES": "1"},
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr


def test_editable_folder_outside_the_repository_is_refused(
    project: Project, tmp_path: Path
) -> None:
    pkg = tmp_path / "outside-pkg"
    (pkg / "alpha").mkdir(parents=True)
    (pkg / "alpha" / "__init__.py").write_text("")
    (pkg / "pyproject.toml").write_text(
        '[project]\nname = "alpha"\nversion = "9.0"\n'
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
    )
    _lock_with_source(project, f'{{ path = "{pkg}", editable = true }}')
    res = _prepare(project, tmp_path / "c")
    assert res.returncode == 2, res.stderr
    assert "alpha" in res.stderr and "outside the repository" in res.stderr
    assert not _built(tmp_path / "c")


def test_git_file_source_is_refused_before_its_backend_runs(
    project: Project, tmp_path: Path
) -> None:
    other = PipelineRepo(tmp_path / "other")
    planted = tmp_path / "backend-ran"
    other.write("alpha/__init__.py", "")
    other.write(
        "pyproject.toml",
        '[project]\nname = "alpha"\nversion = "7.0"\n'
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
    )
    other.write(
        "backend.py", f"open({str(planted)!r}, 'w').close()\nfrom hatchling.build import *\n"
    )
    other.commit("a package with a loud backend")
    text = pyproject(["alpha"], project.index.url)
    text += f'\n[tool.uv.sources]\nalpha = {{ git = "{other.url}" }}\n'
    (project.repo.work / "pyproject.toml").write_text(text)
    subprocess.run(
        ["uv", "lock", "-q", "--project", str(project.repo.work)], capture_output=True, check=False
    )
    if 'git = "file:' not in (project.repo.work / "uv.lock").read_text():
        pytest.skip("uv could not lock the git source here")
    planted.unlink(missing_ok=True)  # locking may build it; only prepare must not
    project.repo.commit("alpha from a local git repository")
    res = _prepare(project, tmp_path / "c")
    assert res.returncode == 2, res.stderr
    assert "alpha" in res.stderr and "outside the repository" in res.stderr
    assert not planted.exists()
    assert not _built(tmp_path / "c")


# ------------------------------------------------------------------------------ URLs
@pytest.mark.parametrize(
    "repo",
    [
        "ssh://-oProxyCommand=touch%20/tmp/pwned-sunbeam/x",
        "ssh://h:-oProxyCommand=x/y",
        "git@-oProxyCommand.x:repo",
    ],
)
def test_option_like_url_is_refused_before_git(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    code, err = _cli(capsys, "prepare", repo, "--ref", "main", "--cache-dir", str(cache))
    assert code == 2 and "'-'" in err
    assert not cache.exists()  # refused before any folder (or git) was made


def test_local_folder_that_is_no_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "just-a-folder"
    folder.mkdir()
    for repo in (str(folder), folder.as_uri()):
        code, err = _cli(
            capsys, "prepare", repo, "--ref", "main", "--cache-dir", str(tmp_path / "c")
        )
        assert code == 2 and "not a git repository" in err


# -------------------------------------------------------------------- options and settings
@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("SUNBEAM_LINK_MODE", "bogus", "hardlink"),
        ("SUNBEAM_BYTECODE", "maybe", "background"),
        ("SUNBEAM_LOCK_TIMEOUT", "soon", "number"),
        ("SUNBEAM_LOCK_TIMEOUT", "-5", "0"),
    ],
)
def test_bad_setting_is_one_line_naming_it(
    project: Project,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    accepted: str,
) -> None:
    monkeypatch.setenv(variable, value)
    args = ("--ref", "main", "--cache-dir", str(tmp_path / "c"))
    code, err = _cli(capsys, "prepare", project.repo.url, *args)
    assert code == 2 and variable in err and accepted in err, err


def test_bad_options_are_one_line(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    url = project.repo.url
    cache = ("--cache-dir", str(tmp_path / "c"))
    cases = [
        (["prepare", url, "--ref=--", *cache], "ref"),
        (["prepare", url, "--ref", "main", "--cache-dir", str(a_file / "cache")], "cache folder"),
        (["prepare", url, "--ref", "main", "--project-dir", "d" * 5000, *cache], "project folder"),
        (["prepare", url, "--ref", "main", "--group=--all-groups", *cache], "group"),
        (["prepare", url, "--ref", "main", "--extra", "-x", *cache], "extra"),
    ]
    for args, named in cases:
        code, err = _cli(capsys, *args)
        assert code == 2 and named in err, (args[:4], err)
        assert len(err) < 400
    assert not _built(tmp_path / "c")
