"""Damaged environments are found before use, moved aside and rebuilt; uv never touches them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sunbeam_contracts.processes import signal_group
from sunbeam_sync import SyncSettings
from tests.support.sync_cli import start_prepare, wait_for
from tests.support.sync_project import Project, env_python, prep, prep_heals, run_cli
from tests.support.wheels import build_wheel


def _site(env: str) -> Path:
    return next(Path(env).glob("lib/python*/site-packages"))


def test_file_deleted_inside_package_is_healed(project: Project, settings: SyncSettings) -> None:
    first = prep(settings, project.repo.url, "main")
    victim = _site(first.env) / "alpha" / "__init__.py"
    victim.unlink()
    second = prep(settings, project.repo.url, "main")
    assert second.healed and not second.cache_hit and second.built
    assert "alpha/__init__.py of alpha is missing" in (second.heal_reason or "")
    assert env_python(second, "import alpha; print(alpha.__version__)") == "1.0"
    quarantined = list(Path(settings.cache_dir, "envs").glob(".bad-*"))
    assert len(quarantined) == 1


def test_package_installed_after_build_is_detected(
    project: Project, settings: SyncSettings
) -> None:
    first = prep(settings, project.repo.url, "main")
    extra = _site(first.env) / "sneaky-1.0.dist-info"
    extra.mkdir()
    (extra / "RECORD").write_text("")
    prep_heals(settings, project, "sneaky-1.0.dist-info")


@pytest.fixture
def throwaway_python(tmp_path: Path) -> Path:
    """A copy of the base interpreter with its own (nearly empty) site-packages."""
    base = Path(sys.base_prefix)
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    root = tmp_path / "pybase"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(base / "bin" / ver, root / "bin" / ver)
    lib = root / "lib" / ver
    lib.mkdir(parents=True)
    for entry in (base / "lib" / ver).iterdir():
        if entry.name != "site-packages":
            (lib / entry.name).symlink_to(entry)
    site = lib / "site-packages"
    site.mkdir()
    with zipfile.ZipFile(build_wheel(tmp_path / "w", "basemarker", "1.0")) as zf:
        zf.extractall(site)
    python = root / "bin" / ver
    prefix = subprocess.run(
        [python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert prefix == str(root)
    return python


def test_missing_pyvenv_cfg_is_healed_and_base_untouched(
    project: Project, settings: SyncSettings, throwaway_python: Path
) -> None:
    site = throwaway_python.parent.parent / "lib" / throwaway_python.name / "site-packages"
    before = sorted(p.name for p in site.iterdir())
    first = prep(settings, project.repo.url, "main", python=str(throwaway_python))
    (Path(first.env) / "pyvenv.cfg").unlink()
    second = prep(settings, project.repo.url, "main", python=str(throwaway_python))
    assert second.healed and "pyvenv.cfg" in (second.heal_reason or "")
    assert sorted(p.name for p in site.iterdir()) == before  # uv never synced into the base
    assert "alpha" not in before
    assert env_python(second, "import sys; print(sys.prefix)") == second.env


def _same_size(data: bytes) -> bytes:
    changed = data.replace(b"1.0", b"6.6")
    assert changed != data and len(changed) == len(data)
    return changed


def test_same_size_edit_in_place_is_healed(
    project: Project, settings: SyncSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 23 §4: the stat every hit makes anyway shows the moved mtime. Through a hardlink the
    # edit reaches uv's cache too: healing drops that entry, so the rebuild has the original.
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv"))  # not the cache other tests share
    first = prep(settings, project.repo.url, "main")
    victim = _site(first.env) / "alpha" / "__init__.py"
    data = victim.read_bytes()
    with victim.open("r+b") as fh:  # root ignores the read-only mode; the inode stays
        fh.write(_same_size(data))
    second = prep(settings, project.repo.url, "main")
    assert second.healed and not second.cache_hit
    assert "alpha/__init__.py of alpha was modified in place" in (second.heal_reason or "")
    assert env_python(second, "import alpha; print(alpha.__version__)") == "1.0"
    assert prep(settings, project.repo.url, "main").cache_hit  # healed for good


def test_same_size_replacement_is_healed(project: Project, settings: SyncSettings) -> None:
    # A new file renamed over the old one: same size, same mtime even, but another inode.
    first = prep(settings, project.repo.url, "main")
    victim = _site(first.env) / "alpha" / "__init__.py"
    data = victim.read_bytes()
    new = victim.with_name("__init__.py.new")
    new.write_bytes(_same_size(data))
    st = victim.stat()
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(new, victim)
    cache = str(settings.cache_dir)
    verify = run_cli("verify", "--cache-dir", cache)  # not deep: the same stat answers
    assert verify.returncode == 1 and "alpha/__init__.py of alpha was replaced" in verify.stdout
    second = prep_heals(settings, project, "alpha/__init__.py of alpha was replaced")
    assert env_python(second, "import alpha; print(alpha.__version__)") == "1.0"


def test_a_file_copied_over_itself_heals_without_cleaning_uv_cache(
    project: Project, settings: SyncSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same bytes in a new inode (what a cache folder copied elsewhere looks like): the env
    # rebuilds, from uv's cache as it is. A replaced file is no damage to the cache (no entry
    # links the new inode), so healing removes no entry there: offline, it still rebuilds.
    uv_cache = tmp_path / "uv"
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    first = prep(settings, project.repo.url, "main")
    victim = _site(first.env) / "alpha" / "__init__.py"
    copy = victim.with_name("copy.tmp")
    shutil.copy2(victim, copy)
    os.replace(copy, victim)
    [cached] = uv_cache.glob("archive-v*/*/alpha/__init__.py")
    entry = cached.stat().st_ino
    second = prep_heals(settings, project, "alpha/__init__.py of alpha was replaced")
    assert [p.stat().st_ino for p in uv_cache.glob("archive-v*/*/alpha/__init__.py")] == [entry]
    assert env_python(second, "import alpha; print(alpha.__version__)") == "1.0"


def test_deep_verify_catches_a_change_that_restores_mtime(
    project: Project, settings: SyncSettings
) -> None:
    # What only hashing finds: an in-place edit whose mtime is deliberately set back.
    settings.link_mode = "copy"  # type: ignore[assignment]  # the edit stays in this env
    first = prep(settings, project.repo.url, "main")
    victim = _site(first.env) / "alpha" / "__init__.py"
    data, st = victim.read_bytes(), victim.stat()
    with victim.open("r+b") as fh:
        fh.write(_same_size(data))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    cache = str(settings.cache_dir)
    assert run_cli("verify", "--cache-dir", cache).returncode == 0  # size, mtime, inode as built
    assert prep(settings, project.repo.url, "main").cache_hit
    deep = run_cli("verify", "--deep", "--cache-dir", cache, "--json")
    assert deep.returncode == 1 and "changed content" in deep.stdout
    healed = prep(settings, project.repo.url, "main")
    assert healed.healed and "deep verification" in (healed.heal_reason or "")
    assert env_python(healed, "import alpha; print(alpha.__version__)") == "1.0"


def test_kill_9_mid_build_leaves_nothing_trusted(project: Project, tmp_path: Path) -> None:
    project.set_deps(["bulky==1.0", "alpha==2.0"])
    project.repo.commit("bulky")
    cache = tmp_path / "cache"
    envs = cache / "envs"
    # Kill at three points of the build, each a state of the temporary folder, not a delay.
    stages = {
        "the temporary exists": lambda: any(envs.glob(".tmp-*")),
        "the venv exists": lambda: any(envs.glob(".tmp-*/pyvenv.cfg")),
        "packages are landing": lambda: any(envs.glob(".tmp-*/lib/python*/site-packages/bulky")),
    }
    for what, reached in stages.items():
        proc = start_prepare(
            project.repo.url,
            cache,
            env={"SUNBEAM_LINK_MODE": "copy", "SUNBEAM_BYTECODE": "off"},
            capture=False,
        )
        wait_for(reached, 60, what)
        # Freeze the sync, so what we see is what the kill interrupts: it cannot publish meanwhile.
        signal_group(proc.pid, signal.SIGSTOP)
        published = [p for p in envs.iterdir() if not p.name.startswith(".")]
        assert list(envs.glob(".tmp-*")) and not published, f"build finished before: {what}"
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not [p for p in envs.iterdir() if not p.name.startswith(".")]  # nothing trusted
    res = run_cli("prepare", project.repo.url, "--ref", "main", "--cache-dir", str(cache), "--json")
    assert res.returncode == 0, res.stderr
    assert res.json["built"] is True
    assert not list(envs.glob(".tmp-*"))  # the killed builds' temporaries were cleared
    out = subprocess.run(
        [res.json["python"], "-c", "import bulky.mod2999, alpha; print(alpha.__version__)"],
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "2.0", out.stderr


def test_empty_metadata_in_uv_cache_is_cleaned_and_retried(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uv_cache = tmp_path / "own-uv-cache"
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    settings = SyncSettings(cache_dir=tmp_path / "cache", bytecode="off", retry_backoff=0.05)
    prep(settings, project.repo.url, "main")
    # A crash mid-unpack leaves a 0-byte METADATA in uv's cache (uv issue 16841).
    for metadata in uv_cache.rglob("alpha-1.0.dist-info/METADATA"):
        metadata.chmod(0o644)
        metadata.write_text("")
    project.set_deps(["alpha==1.0", "gamma==1.0"])
    project.repo.commit("a new lock that installs alpha again")
    res = run_cli(
        "prepare", project.repo.url, "--ref", "main", "--cache-dir", str(settings.cache_dir),
        "--json", env={"SUNBEAM_BYTECODE": "off"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "cache entry for alpha is broken" in res.stderr
    out = subprocess.run(
        [res.json["python"], "-c", "import alpha; print(alpha.__version__)"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.stdout.strip() == "1.0", out.stderr
