"""Issue 25 §3: the interpreter the user chose is the one every uv call uses, the lock check too.

`.python-version` is honoured when nothing else is chosen; a missing interpreter is one line that
names what is required, what the host has and the fix. Only interpreters already on this machine
are used (no downloads).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from sunbeam_sync import BadInputError, SyncSettings
from tests.support.sync_project import Project, env_python, prep, run_cli


def _installed() -> list[tuple[str, str]]:
    """(version, path) of every interpreter uv finds here, as uv lists them."""
    out = subprocess.run(
        ["uv", "python", "list", "--only-installed", "--output-format", "json"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
        env={"UV_PYTHON_DOWNLOADS": "never", "PATH": os.environ["PATH"]},
    )
    return [(item["version"], item["path"]) for item in json.loads(out.stdout)]


def _absent_patch() -> str:
    """A version of this host's Python series that the host does not have (like 3.12.11)."""
    major_minor = ".".join(_installed()[0][0].split(".")[:2])
    return f"{major_minor}.99"


def _pin(project: Project, version: str) -> None:
    project.repo.write(".python-version", version + "\n")
    project.repo.commit(f"pin Python {version}")


def test_chosen_python_wins_over_python_version_in_the_lock_check_too(
    project: Project, settings: SyncSettings
) -> None:
    pinned = _absent_patch()
    _pin(project, pinned)
    series = pinned.rsplit(".", 1)[0]
    result = prep(settings, project.repo.url, "main", python=series)
    assert result.built
    assert env_python(result, "import platform; print(platform.python_version())").startswith(
        series + "."
    )
    settings.python = series  # SUNBEAM_PYTHON: the operator's choice, the same way
    assert prep(settings, project.repo.url, "main").cache_hit


def test_python_version_is_honoured_when_nothing_is_chosen(
    project: Project, settings: SyncSettings
) -> None:
    versions = list(dict.fromkeys(v for v, _path in _installed()))
    if len(versions) < 2:
        pytest.skip("needs two Python versions on this host")
    default = prep(settings, project.repo.url, "main")
    running = env_python(default, "import platform; print(platform.python_version())")
    other = next(v for v in versions if v != running)
    _pin(project, other)
    pinned = prep(settings, project.repo.url, "main")
    assert env_python(pinned, "import platform; print(platform.python_version())") == other
    assert pinned.env_key != default.env_key


def test_missing_pinned_python_is_one_line_with_what_the_host_has(
    project: Project, settings: SyncSettings
) -> None:
    pinned = _absent_patch()
    _pin(project, pinned)
    with pytest.raises(BadInputError) as info:
        prep(settings, project.repo.url, "main")
    said = str(info.value)
    has = _installed()[0][0]
    assert f".python-version asks for Python {pinned}" in said
    assert f"it has {has}" in said and "--python" in said and "\n" not in said
    res = run_cli(
        "prepare", project.repo.url, "--ref", "main", "--cache-dir", str(settings.cache_dir)
    )
    last = res.stderr.strip().splitlines()[-1]
    assert res.returncode == 2 and pinned in last and has in last
    assert not list((settings.cache_dir / "envs").iterdir())  # nothing was built


def test_missing_chosen_python_names_the_choice_and_the_fix(
    project: Project, settings: SyncSettings
) -> None:
    major, minor = _installed()[0][0].split(".")[:2]
    absent = next(
        f"{major}.{m}" for m in range(int(minor) + 1, 99)
        if not any(v.startswith(f"{major}.{m}.") for v, _path in _installed())
    )  # fmt: skip
    res = run_cli(
        "prepare", project.repo.url, "--ref", "main", "--python", absent,
        "--cache-dir", str(settings.cache_dir),
    )  # fmt: skip
    last = res.stderr.strip().splitlines()[-1]
    assert res.returncode == 2
    assert f"Python {absent} was chosen (--python / SUNBEAM_PYTHON)" in last
    assert _installed()[0][0] in last and "install it, or choose an installed one" in last
