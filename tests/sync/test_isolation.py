"""A write into one environment must change neither its siblings nor uv's cache."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sunbeam_sync import SyncSettings
from tests.support.sync_project import Project, env_python, prep

NOBODY = 65534


@pytest.fixture
def open_dir() -> Iterator[Path]:
    # pytest's own tmp folders are private to root; a non-root writer must be able to reach the env.
    path = Path(tempfile.mkdtemp(prefix="sunbeam-iso-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def _two_envs(project: Project, settings: SyncSettings):  # type: ignore[no-untyped-def]
    project.set_deps(["gamma==1.0", "alpha==1.0"])
    project.repo.commit("a")
    a = prep(settings, project.repo.url, "main")
    project.repo.checkout("b", create=True)
    project.set_deps(["gamma==1.0", "alpha==2.0"])
    project.repo.commit("b", branch="b")
    b = prep(settings, project.repo.url, "b")
    assert a.env_key != b.env_key
    return a, b


def _gamma(env: str) -> Path:
    return next(Path(env).glob("lib/python*/site-packages")) / "gamma" / "__init__.py"


def _cached_gamma() -> list[Path]:
    return list(Path(os.environ["UV_CACHE_DIR"]).glob("**/gamma/__init__.py"))


def test_hardlinked_env_refuses_non_root_writes(project: Project, open_dir: Path) -> None:
    settings = SyncSettings(cache_dir=open_dir / "cache", bytecode="off", link_mode="hardlink")
    a, b = _two_envs(project, settings)
    assert os.stat(_gamma(a.env)).st_ino == os.stat(_gamma(b.env)).st_ino  # shared with the cache
    original = _gamma(b.env).read_text()
    target = str(_gamma(a.env))
    read = subprocess.run(["cat", target], user=NOBODY, group=NOBODY, capture_output=True)
    write = subprocess.run(
        ["sh", "-c", 'echo "# poisoned" >> "$1"', "sh", target],
        user=NOBODY,
        group=NOBODY,
        capture_output=True,
        text=True,
    )
    assert read.returncode == 0  # the non-root flow can read its env...
    assert write.returncode != 0 and "Permission denied" in write.stderr  # ...but not write it
    assert _gamma(b.env).read_text() == original
    assert all(p.read_text() == original for p in _cached_gamma())


def test_root_write_through_hardlink_is_detected_and_healed(
    project: Project, settings: SyncSettings
) -> None:
    settings.link_mode = "hardlink"  # type: ignore[assignment]
    a, _b = _two_envs(project, settings)
    original = _gamma(a.env).read_text()
    with _gamma(a.env).open("a") as fh:  # root ignores file modes: the write goes through
        fh.write("# poisoned by a flow running as root\n")
    healed_a = prep(settings, project.repo.url, "main")
    healed_b = prep(settings, project.repo.url, "b")
    assert healed_a.healed and healed_b.healed  # the sibling shared the inode: caught too
    assert _gamma(healed_a.env).read_text() == original
    assert _gamma(healed_b.env).read_text() == original
    assert all(p.read_text() == original for p in _cached_gamma())  # poisoned entry replaced


def test_copy_mode_isolates_even_root_writes(project: Project, settings: SyncSettings) -> None:
    settings.link_mode = "copy"  # type: ignore[assignment]
    a, b = _two_envs(project, settings)
    original = _gamma(b.env).read_text()
    with _gamma(a.env).open("a") as fh:
        fh.write("# scribble\n")
    assert _gamma(b.env).read_text() == original
    assert all(p.read_text() == original for p in _cached_gamma())
    assert env_python(b, "import gamma; print(gamma.__version__)") == "1.0"
