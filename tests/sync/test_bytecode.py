"""A new env borrows compiled bytecode from a sibling for every source file they share.

The build borrows (hardlinks, before the publish: the env's first run imports warm bytecode); the
rest is compiled by a background job after the publish (no run waits for it).
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest

from sunbeam_sync import SyncSettings
from tests.support.sync_cli import wait_for
from tests.support.sync_project import Project, prep


def _pyc(env: str, package: str) -> list[Path]:
    site = next(Path(env).glob("lib/python*/site-packages"))
    return sorted((site / package / "__pycache__").glob("*.pyc"))


def _compiled(settings: SyncSettings, key: str) -> None:
    marker = Path(settings.cache_dir, "state", f"{key}.compiled")
    wait_for(marker.exists, 120, "the background bytecode job")


def test_new_env_reuses_sibling_bytecode_for_shared_files(
    project: Project, settings: SyncSettings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.link_mode = "hardlink"  # type: ignore[assignment]
    settings.bytecode = "background"  # type: ignore[assignment]
    first = prep(settings, project.repo.url, "main")  # alpha 1.0
    _compiled(settings, first.env_key)
    assert _pyc(first.env, "alpha")

    project.repo.checkout("more", create=True)
    project.set_deps(["alpha==1.0", "gamma==1.0"])
    project.repo.commit("add gamma", branch="more")
    with caplog.at_level(logging.INFO, logger="sunbeam_sync"):
        second = prep(settings, project.repo.url, "more")
    # Borrowed by the build itself, before the publish: the background job after it is given
    # no sibling to borrow from, so a shared inode can only have come from the build.
    said = f"borrowed 1 compiled files from env {first.env_key[:12]}"
    assert said in caplog.text
    borrowed = _pyc(second.env, "alpha")
    assert borrowed, "alpha's bytecode should have come from the sibling env"
    assert os.stat(borrowed[0]).st_ino == os.stat(_pyc(first.env, "alpha")[0]).st_ino
    _compiled(settings, second.env_key)
    gamma = _pyc(second.env, "gamma")
    assert gamma and os.stat(gamma[0]).st_nlink == 1  # a new package's bytecode: compiled here
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
    _compiled(settings, third.env_key)
    mine, theirs = _pyc(third.env, "alpha"), _pyc(first.env, "alpha")
    assert os.stat(mine[0]).st_ino != os.stat(theirs[0]).st_ino  # another version's: not borrowed
    # Sibling builds linking the same files, bytecode written beside them: the first env is as
    # built (no mtime or inode of its files moved), a plain hit.
    again = prep(settings, project.repo.url, "main")
    assert again.cache_hit and not again.healed, again.heal_reason


def test_every_file_of_a_new_env_is_read_only_bytecode_included(
    project: Project, settings: SyncSettings
) -> None:
    # Site-packages' files lose their write bits with the baseline's pass, the rest (bytecode
    # compiled at build, bin/, pyvenv.cfg) with the folder walk: none may be left out.
    settings.bytecode = "build"  # type: ignore[assignment]
    env = Path(prep(settings, project.repo.url, "main").env)
    files = [Path(d, f) for d, _dirs, names in os.walk(env) for f in names]
    assert any(f.suffix == ".pyc" for f in files) and any(f.name == "pyvenv.cfg" for f in files)
    writable = [str(f) for f in files if not f.is_symlink() and f.stat().st_mode & 0o222]
    assert writable == []
