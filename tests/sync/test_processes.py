"""Issue 11 §4: a dead sync leaves no child alive; a killed compile resumes; gc as non-root."""

from __future__ import annotations

import json
import os
import signal
import tempfile
from pathlib import Path

import pytest

from sunbeam_contracts.processes import signal_group
from sunbeam_sync import SyncSettings
from sunbeam_sync.housekeeping import collect_garbage
from tests.support.pyindex import LocalIndex
from tests.support.sync_cli import start_prepare, wait_for
from tests.support.sync_project import Project, prep
from tests.support.wheels import build_wheel

NOBODY = 65534


def _children_building_into(cache: Path) -> list[int]:
    """Processes (uv, git) whose arguments or environment name the cache folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name in {"uv", "git"} and str(cache).encode() in blob:
            found.append(int(entry.name))
    return found


def test_killed_sync_leaves_no_uv_running(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = LocalIndex(tmp_path / "slow-index").start()
    try:
        slow.add(build_wheel(tmp_path / "w", "slowpkg", "1.0"))
        project.index = slow
        project.set_deps(["slowpkg==1.0"])
        project.repo.commit("slow")
        slow.delay = 30.0
        cache = tmp_path / "cache"
        uv_cache = str(tmp_path / "fresh-uv-cache")
        proc = start_prepare(project.repo.url, cache, env={"UV_CACHE_DIR": uv_cache}, capture=False)
        envs = cache / "envs"
        wait_for(lambda: any(envs.glob(".tmp-*/pyvenv.cfg")), 60, "the build's venv")
        wait_for(lambda: _children_building_into(cache), 30, "uv sync to run")
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        wait_for(lambda: not _children_building_into(cache), 10, "uv to die with the sync")
    finally:
        slow.delay = 0
        slow.stop()


def test_killed_bytecode_compile_is_resumed(project: Project, tmp_path: Path) -> None:
    settings = SyncSettings(cache_dir=tmp_path / "cache", bytecode="off", retry_backoff=0.05)
    first = prep(settings, project.repo.url, "main")  # published, never compiled (as if killed)
    done = Path(settings.cache_dir) / "state" / f"{first.env_key}.compiled"
    assert not done.exists()
    settings.bytecode = "background"  # type: ignore[assignment]
    again = prep(settings, project.repo.url, "main")
    assert again.cache_hit
    wait_for(done.exists, 60, "the resumed compile to finish")
    assert list(Path(first.env).glob("lib/python*/site-packages/alpha/__pycache__/*.pyc"))


def test_gc_as_non_root_deletes_unreadable_quarantined_env() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to become another user")
    root = Path(tempfile.mkdtemp(prefix="sunbeam-gc-nobody-"))
    try:
        root.chmod(0o755)
        cache = root / "cache"
        bad = cache / "envs" / f".bad-{'a' * 64}-20260101T000000-abcdef"
        (bad / "lib" / "locked").mkdir(parents=True)
        (bad / "lib" / "locked" / "data.bin").write_bytes(b"x" * 100_000)
        for path in [cache, *cache.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
        (bad / "lib" / "locked").chmod(0)  # unreadable folder inside
        (bad / "lib").chmod(0o555)
        report = _as_nobody(lambda: collect_garbage(SyncSettings(cache_dir=cache)).model_dump())
        assert not bad.exists()
        assert [r["kind"] for r in report["removed"]] == ["quarantined"]
        assert report["bytes_reclaimed"] >= 100_000 and not report["failed"]
        leftovers = [p.name for p in (cache / "envs").iterdir()]
        assert leftovers == []
    finally:
        _chmod_all(root)
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def _as_nobody(work):  # type: ignore[no-untyped-def]
    """Run `work` in a forked child as user nobody; return its JSON-able result."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write, json.dumps(work()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        out = fh.read()
    os.waitpid(pid, 0)
    assert out, "the gc child failed"
    return json.loads(out)


def _chmod_all(root: Path) -> None:
    for dirpath, dirs, _files in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(dirpath, d), 0o755)
