"""A new env borrows compiled bytecode from a sibling for every source file they share."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sunbeam_sync import SyncSettings
from tests.support.sync_project import Project, prep


def _pyc(env: str, package: str) -> list[Path]:
    site = next(Path(env).glob("lib/python*/site-packages"))
    return sorted((site / package / "__pycache__").glob("*.pyc"))


def test_new_env_reuses_sibling_bytecode_for_shared_files(
    project: Project, settings: SyncSettings
) -> None:
    settings.link_mode = "hardlink"  # type: ignore[assignment]
    settings.bytecode = "build"  # type: ignore[assignment]
    first = prep(settings, project.repo.url, "main")  # alpha 1.0, compiled at build
    assert _pyc(first.env, "alpha")

    settings.bytecode = "off"  # type: ignore[assignment]
    project.repo.checkout("more", create=True)
    project.set_deps(["alpha==1.0", "gamma==1.0"])
    project.repo.commit("add gamma", branch="more")
    second = prep(settings, project.repo.url, "more")
    borrowed = _pyc(second.env, "alpha")
    assert borrowed, "alpha's bytecode should have come from the sibling env"
    assert os.stat(borrowed[0]).st_ino == os.stat(_pyc(first.env, "alpha")[0]).st_ino
    assert not _pyc(second.env, "gamma")  # a new package's bytecode is never borrowed
    out = subprocess.run(
        [second.python, "-c", "import alpha, gamma; print(alpha.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1.0"

    project.repo.checkout("main")
    project.repo.checkout("other-alpha", create=True)
    project.set_deps(["alpha==2.0"])
    project.repo.commit("alpha 2", branch="other-alpha")
    third = prep(settings, project.repo.url, "other-alpha")
    assert not _pyc(third.env, "alpha")  # a different version's file: its bytecode is not ours
