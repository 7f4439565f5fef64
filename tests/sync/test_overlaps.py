"""Issue 25 §1: paths several distributions install (dbt's `dbt/__init__.py`) are not damage.

dbt-core and each adapter ship their own `dbt/__init__.py`; uv keeps the copy it wrote last. The
env must build, verify, hit and verify deeply as uv wrote it; real damage to such a file is still
caught, and healing removes only the damaged entry from uv's cache, never a healthy one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from sunbeam_sync import SyncSettings
from sunbeam_sync.envs.manifest import Manifest
from tests.support.corpus import DBT_ADAPTERS, DBT_CORE_INIT, dbt_adapter_init, dbt_wheels
from tests.support.pyindex import LocalIndex
from tests.support.sync_project import Project, env_python, prep, run_cli


@pytest.fixture(scope="module")
def dbt_index(index: LocalIndex, tmp_path_factory: pytest.TempPathFactory) -> LocalIndex:
    index.add_all(dbt_wheels(tmp_path_factory.mktemp("dbt-wheels")))
    return index


@pytest.fixture
def dbt_project(project: Project, dbt_index: LocalIndex) -> Project:
    project.set_deps([f"dbt-{name}==1.0" for name in DBT_ADAPTERS])
    project.repo.commit("dbt with two adapters")
    return project


@pytest.fixture
def own_uv_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "uv-cache"
    monkeypatch.setenv("UV_CACHE_DIR", str(cache))
    return cache


def _cached(uv_cache: Path) -> dict[str, tuple[int, str]]:
    """Each copy of dbt/__init__.py in uv's cache: its content → (inode, content)."""
    found = {}
    for path in uv_cache.glob("archive-v*/*/dbt/__init__.py"):
        found[path.read_text()] = (path.stat().st_ino, path.read_text())
    return found


def _site(env: str) -> Path:
    return next(Path(env).glob("lib/python*/site-packages"))


def test_overlapping_namespace_files_build_verify_and_hit(
    dbt_project: Project,
    settings: SyncSettings,
    own_uv_cache: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sunbeam_sync")
    first = prep(settings, dbt_project.repo.url, "main")
    assert first.built and not first.healed
    imported = (
        "import dbt.adapters.duckdb as d, dbt.adapters.sqlite as s, dbt_core; print(d.NAME, s.NAME)"
    )
    assert env_python(first, imported) == "duckdb sqlite"

    # The build recorded whose copy uv kept, and it is the copy on disk.
    manifest = Manifest.read(Path(first.env))
    assert manifest is not None
    keeper = manifest.overlaps["dbt/__init__.py"]
    on_disk = (_site(first.env) / "dbt" / "__init__.py").read_text()
    shipped = {"dbt_core-1.0.dist-info": DBT_CORE_INIT}
    shipped |= {f"dbt_{n}-1.0.dist-info": dbt_adapter_init(n) for n in DBT_ADAPTERS}
    assert on_disk == shipped[keeper]
    assert set(manifest.overlaps) == {"dbt/__init__.py", "dbt/adapters/__init__.py"}

    # Hit, verify and verify --deep agree with what uv wrote; no cache entry was removed.
    assert prep(settings, dbt_project.repo.url, "main").cache_hit
    cache = str(settings.cache_dir)
    assert run_cli("verify", "--cache-dir", cache).returncode == 0
    deep = run_cli("verify", "--deep", "--cache-dir", cache)
    assert deep.returncode == 0, deep.stdout
    assert prep(settings, dbt_project.repo.url, "main").cache_hit
    assert sorted(_cached(own_uv_cache)) == sorted(shipped.values())
    assert "from uv's cache" not in caplog.text and "cache entries were modified" not in caplog.text


def test_real_damage_to_an_overlapping_file_heals_only_its_cache_entry(
    dbt_project: Project,
    settings: SyncSettings,
    own_uv_cache: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.link_mode = "hardlink"  # type: ignore[assignment]
    first = prep(settings, dbt_project.repo.url, "main")
    victim = _site(first.env) / "dbt" / "__init__.py"
    kept_text = victim.read_text()
    before = _cached(own_uv_cache)
    assert victim.stat().st_ino == before[kept_text][0]  # the env's file is that cache entry
    with victim.open("a") as fh:  # root ignores file modes: the write reaches uv's cache
        fh.write("# poisoned\n")

    caplog.set_level(logging.INFO, logger="sunbeam_sync")
    healed = prep(settings, dbt_project.repo.url, "main")
    assert healed.healed and "dbt/__init__.py" in (healed.heal_reason or "")
    cleaned = [r.getMessage() for r in caplog.records if "from uv's cache" in r.getMessage()]
    owners = {DBT_CORE_INIT: "dbt-core"} | {dbt_adapter_init(n): f"dbt-{n}" for n in DBT_ADAPTERS}
    owner = owners[kept_text]
    assert len(cleaned) == 1 and f"removing {owner} from" in cleaned[0], cleaned
    after = _cached(own_uv_cache)
    for text, (inode, _content) in before.items():
        if text != kept_text:  # the healthy owners' entries are the very same files
            assert after[text][0] == inode
    assert kept_text in after and after[kept_text][0] != before[kept_text][0]  # fresh entry
    assert "# poisoned" not in (_site(healed.env) / "dbt" / "__init__.py").read_text()
    assert run_cli("verify", "--deep", "--cache-dir", str(settings.cache_dir)).returncode == 0
    assert env_python(healed, "import dbt.adapters.duckdb as d; print(d.NAME)") == "duckdb"


def test_same_size_damage_to_an_overlapping_file_is_found(
    dbt_project: Project, settings: SyncSettings, own_uv_cache: Path
) -> None:
    settings.link_mode = "copy"  # type: ignore[assignment]
    first = prep(settings, dbt_project.repo.url, "main")
    victim = _site(first.env) / "dbt" / "__init__.py"
    data = victim.read_bytes()
    victim.chmod(0o644)
    damaged = data.replace(b"#", b"!", 1)  # same size, other content
    victim.write_bytes(damaged)
    os.chmod(victim, 0o444)
    cache = str(settings.cache_dir)
    # Sizes match; the mtime moved, on the copy uv kept (whichever owner's that is).
    verify = run_cli("verify", "--cache-dir", cache)
    assert verify.returncode == 1 and "dbt/__init__.py of dbt-" in verify.stdout
    assert "modified in place" in verify.stdout
    healed = prep(settings, dbt_project.repo.url, "main")
    assert healed.healed
    now = (_site(healed.env) / "dbt" / "__init__.py").read_text()
    assert now in [DBT_CORE_INIT, *map(dbt_adapter_init, DBT_ADAPTERS)]
