"""Many simultaneous prepares of one new key build it once; cancel stops a build cleanly."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sunbeam_sync import Cancelled, PrepareRequest, SyncSettings, prepare
from tests.support.pyindex import LocalIndex
from tests.support.sync_cli import start_prepare, wait_for
from tests.support.sync_project import CliResult, Project
from tests.support.wheels import build_wheel


def test_eight_concurrent_prepares_build_once(project: Project, tmp_path: Path) -> None:
    project.set_deps(["bulky==1.0", "beta==1.0"])
    project.repo.commit("new lock")
    cache = tmp_path / "cache"
    procs = [
        start_prepare(project.repo.url, cache, "--json", env={"SUNBEAM_BYTECODE": "off"})
        for _ in range(8)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        results.append(CliResult(p.returncode, out, err))
    assert all(r.returncode == 0 for r in results), [r.stderr[-500:] for r in results]
    data = [r.json for r in results]
    assert sum(d["built"] for d in data) == 1
    assert sum(d["cache_hit"] for d in data) == 7
    assert len({d["env"] for d in data}) == 1
    # The ones that waited said what they waited for (or found it already built).
    waiters = [r.stderr for r in results if '"built": false' in r.stdout]
    assert all("built meanwhile" in s or "cache hit" in s for s in waiters)
    creations = sum(r.stderr.count("Creating virtual environment") for r in results)
    assert creations == 1


def test_threads_in_one_process_build_once(project: Project, settings: SyncSettings) -> None:
    project.set_deps(["gamma==1.0"])
    project.repo.commit("gamma")
    results = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with prepare(PrepareRequest(repo=project.repo.url, ref="main"), settings=settings) as p:
                results.append(p.result)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r.built for r in results) == 1 and len({r.env_key for r in results}) == 1


def test_cancel_during_slow_build_leaves_nothing(
    project: Project, settings: SyncSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = LocalIndex(tmp_path / "slow-index").start()
    try:
        slow.add(build_wheel(tmp_path / "w", "slowpkg", "1.0"))
        project.index = slow
        monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "fresh-uv-cache"))
        project.set_deps(["slowpkg==1.0"])
        project.repo.commit("slow")
        slow.delay = 30.0
        cancel = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                prepare(
                    PrepareRequest(repo=project.repo.url, ref="main"),
                    settings=settings,
                    cancel=cancel,
                )
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        envs = Path(settings.cache_dir) / "envs"
        # Cancel once the venv exists: uv sync is then running, stalled on the slow download.
        wait_for(lambda: any(envs.glob(".tmp-*/pyvenv.cfg")), 30, "the build's venv")
        started = time.monotonic()
        cancel.set()
        thread.join(timeout=15)
        assert not thread.is_alive()
        assert time.monotonic() - started < 5  # prompt
        assert len(errors) == 1 and isinstance(errors[0], Cancelled)
        assert list(envs.iterdir()) == []  # no half-built env, no temporary
    finally:
        slow.delay = 0
        slow.stop()
