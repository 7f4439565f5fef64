"""`list`, `verify` and `gc`: LRU to a byte budget, never an env in use, leftovers cleared."""

from __future__ import annotations

import time
from pathlib import Path

from sunbeam_sync import PrepareRequest, SyncSettings, prepare
from tests.support.sync_cli import wait_for
from tests.support.sync_project import Project, prep, run_cli


def test_gc_evicts_least_recently_used_but_never_in_use(
    project: Project, settings: SyncSettings
) -> None:
    old = prep(settings, project.repo.url, "main")
    used = time.time()
    wait_for(lambda: time.time() > used, 1, "the clock to move on")  # distinct last-use times
    project.repo.checkout("feature", create=True)
    project.set_deps(["alpha==2.0"])
    project.repo.commit("alpha 2", branch="feature")
    newer = prep(settings, project.repo.url, "feature")
    cache = str(settings.cache_dir)
    envs = Path(cache) / "envs"
    # leftovers from killed builds and healing
    (envs / f".tmp-{old.env_key}-999999-deadbeef").mkdir()
    (envs / f".bad-{newer.env_key}-20260101T000000-abcdef").mkdir()

    listing = run_cli("list", "--cache-dir", cache, "--json").json
    assert {e["key"] for e in listing} == {old.env_key, newer.env_key}
    assert all(e["size_bytes"] > 0 and not e["in_use"] for e in listing)
    assert "feature" in next(e for e in listing if e["key"] == newer.env_key)["refs"]

    dry = run_cli("gc", "--cache-dir", cache, "--max-bytes", "0", "--dry-run", "--json").json
    assert dry["dry_run"] and {r["kind"] for r in dry["removed"]} >= {"env", "temporary"}
    assert Path(old.env).exists() and Path(newer.env).exists()  # dry run deletes nothing

    with prepare(PrepareRequest(repo=project.repo.url, ref="main"), settings=settings) as held:
        in_use = run_cli("list", "--cache-dir", cache, "--json").json
        assert next(e for e in in_use if e["key"] == old.env_key)["in_use"] is True
        report = run_cli("gc", "--cache-dir", cache, "--max-bytes", "0", "--json").json
        assert Path(held.result.env).exists()  # leased: kept even though over budget
        assert old.env_key in report["kept_in_use"]
        assert not Path(newer.env).exists()  # not in use: evicted
        assert Path(held.result.checkout).exists()  # leased checkout kept
    kinds = {r["kind"] for r in report["removed"]}
    assert kinds >= {"env", "temporary", "quarantined", "checkout"}
    assert report["bytes_reclaimed"] > 0
    assert not list(envs.glob(".tmp-*")) and not list(envs.glob(".bad-*"))
    # evicted env comes back on demand
    again = prep(settings, project.repo.url, "feature")
    assert again.built


def test_verify_reports_damage(project: Project, settings: SyncSettings) -> None:
    result = prep(settings, project.repo.url, "main")
    cache = str(settings.cache_dir)
    assert run_cli("verify", "--cache-dir", cache).returncode == 0
    next(Path(result.env).glob("lib/python*/site-packages/alpha/__init__.py")).unlink()
    res = run_cli("verify", "--cache-dir", cache)
    assert res.returncode == 1 and "DAMAGED" in res.stdout and "alpha/__init__.py" in res.stdout
