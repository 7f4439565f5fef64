"""Issue 10 item 9: a new env's log says what changed; `list` explains its sizes; gc says why."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sunbeam_sync import PrepareRequest, SyncSettings, prepare
from tests.support.sync_project import Project, prep, run_cli


def _log_of(
    settings: SyncSettings, project: Project, ref: str, caplog: pytest.LogCaptureFixture
) -> str:
    logger = logging.getLogger("test-run-log")
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="test-run-log"),
        prepare(PrepareRequest(repo=project.repo.url, ref=ref), settings=settings, logger=logger),
    ):
        pass
    return "\n".join(r.getMessage() for r in caplog.records)


def test_new_env_log_names_what_differs_from_the_closest(
    project: Project, settings: SyncSettings, caplog: pytest.LogCaptureFixture
) -> None:
    first = _log_of(settings, project, "main", caplog)
    assert "first environment here: 1 packages" in first
    project.set_deps(["alpha==2.0", "gamma==1.0"])
    project.repo.commit("alpha 2, gamma")
    second = _log_of(settings, project, "main", caplog)
    assert "+ gamma 1.0" in second and "~ alpha 1.0 -> 2.0" in second, second
    assert "0 packages unchanged" in second
    assert "==" not in second  # uv's one line per package is summarised, not repeated


def test_list_has_a_header_and_both_sizes(project: Project, settings: SyncSettings) -> None:
    prep(settings, project.repo.url, "main")
    out = run_cli("list", "--cache-dir", str(settings.cache_dir)).stdout.splitlines()
    assert out[0].split()[:3] == ["KEY", "FREES", "APPARENT"]
    assert out[-1].startswith("FREES: what evicting the env frees")
    listing = run_cli("list", "--cache-dir", str(settings.cache_dir), "--json").json
    assert listing[0]["apparent_bytes"] > 0 and listing[0]["size_bytes"] > 0


def test_gc_keeps_each_recent_refs_newest_checkout_and_says_why(
    project: Project, settings: SyncSettings
) -> None:
    old = prep(settings, project.repo.url, "main")
    project.write_code("print('v2')\n")
    project.repo.commit("code change")
    new = prep(settings, project.repo.url, "main")
    assert new.commit != old.commit and new.env_key == old.env_key
    dry = run_cli("gc", "--cache-dir", str(settings.cache_dir), "--dry-run", "--json").json
    gone = {r["name"]: r["why"] for r in dry["removed"] if r["kind"] == "checkout"}
    assert list(gone) == [next(n for n in gone if n.endswith(old.commit[:12]))]
    assert "not the newest commit of any ref" in next(iter(gone.values()))
    assert any(new.commit[:12] in k and "main" in k for k in dry["kept_recent"])
    text = run_cli("gc", "--cache-dir", str(settings.cache_dir), "--dry-run").stdout
    assert "not the newest commit" in text and Path(old.checkout).exists()
