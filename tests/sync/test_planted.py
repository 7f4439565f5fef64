"""Issue 11 §3 and §2: code planted in a shared env is noticed; healing heals the cause."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

import pytest

from sunbeam_sync import SyncSettings
from tests.support.pyindex import LocalIndex
from tests.support.sync_project import Project, env_python, prep, prep_heals, run_cli
from tests.support.wheels import build_wheel


def _site(env: str) -> Path:
    return next(Path(env).glob("lib/python*/site-packages"))


def test_folders_of_an_env_are_read_only(project: Project, settings: SyncSettings) -> None:
    env = prep(settings, project.repo.url, "main").env
    for folder in (_site(env), _site(env) / "alpha", Path(env) / "bin"):
        assert stat.S_IMODE(folder.stat().st_mode) & 0o222 == 0, folder


@pytest.mark.parametrize(
    "planted", ["evil.pth", "sitecustomize.py", "alpha/extra.py", "brand_new/__init__.py"]
)
def test_file_no_distribution_owns_is_noticed(
    project: Project, settings: SyncSettings, planted: str
) -> None:
    first = prep(settings, project.repo.url, "main")
    path = _site(first.env) / planted
    path.parent.mkdir(exist_ok=True)  # root ignores the read-only folders; a flow would not
    path.write_text("import os\n")
    second = prep_heals(settings, project, "no distribution installed")
    assert planted in (second.heal_reason or "")
    assert not (_site(second.env) / planted).exists()


def test_pyvenv_cfg_changed_is_noticed(project: Project, settings: SyncSettings) -> None:
    first = prep(settings, project.repo.url, "main")
    cfg = Path(first.env) / "pyvenv.cfg"
    text = cfg.read_text().replace(
        "include-system-site-packages = false", "include-system-site-packages = true"
    )
    assert "include-system-site-packages = true" in text
    cfg.chmod(0o644)
    cfg.write_text(text)
    second = prep_heals(settings, project, "pyvenv.cfg differs")
    assert "include-system-site-packages = true" in (second.heal_reason or "")


def test_interpreter_swapped_is_noticed(
    project: Project, settings: SyncSettings, tmp_path: Path
) -> None:
    first = prep(settings, project.repo.url, "main")
    python = Path(first.env) / "bin" / "python"
    other = tmp_path / "other-python"
    shutil.copy2(os.path.realpath(python), other)  # same bytes, another file: not what was built
    python.unlink()
    python.symlink_to(other)
    prep_heals(settings, project, "not the interpreter")


def test_record_edited_to_hide_a_deleted_file(project: Project, settings: SyncSettings) -> None:
    first = prep(settings, project.repo.url, "main")
    site = _site(first.env)
    (site / "alpha" / "__init__.py").unlink()
    record = next(site.glob("alpha-*.dist-info")) / "RECORD"
    rows = [r for r in record.read_text().splitlines() if not r.startswith("alpha/__init__.py")]
    record.chmod(0o644)
    record.write_text("\n".join(rows) + "\n")
    second = prep_heals(settings, project, "RECORD of alpha was edited")
    assert env_python(second, "import alpha; print(alpha.__version__)") == "1.0"


def test_deep_verify_trusts_build_time_hashes_not_record(
    project: Project, settings: SyncSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Some packages ship wrong hashes in RECORD (uv issue 11723): that is not damage.
    idx = LocalIndex(tmp_path / "index").start()
    try:
        wheel = build_wheel(tmp_path / "w", "wronghash", "1.0")
        _break_record_hash(wheel, "wronghash/__init__.py")
        idx.add(wheel)
        monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
        project.index = idx
        project.set_deps(["wronghash==1.0"])
        project.repo.commit("wrong hash in RECORD")
        prep(settings, project.repo.url, "main")
        deep = run_cli("verify", "--deep", "--cache-dir", str(settings.cache_dir))
        assert deep.returncode == 0, deep.stdout + deep.stderr
    finally:
        idx.stop()


def _break_record_hash(wheel: Path, member: str) -> None:
    with zipfile.ZipFile(wheel) as zf:
        contents = {n: zf.read(n) for n in zf.namelist()}
    record = next(n for n in contents if n.endswith("RECORD"))
    rows = []
    for row in contents[record].decode().splitlines():
        if row.startswith(member + ","):
            path, _digest, size = row.split(",")
            row = f"{path},sha256={'A' * 43},{size}"
        rows.append(row)
    contents[record] = ("\n".join(rows) + "\n").encode()
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            zf.writestr(name, data)


def test_heal_of_hardlink_damage_cleans_uv_cache(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "own-uv-cache"))
    settings = SyncSettings(
        cache_dir=tmp_path / "cache", bytecode="off", link_mode="hardlink", retry_backoff=0.05
    )
    first = prep(settings, project.repo.url, "main")
    victim = _site(first.env) / "alpha" / "__init__.py"
    assert victim.stat().st_nlink > 1  # shares its inode with uv's cache
    data = victim.read_bytes()
    with open(victim, "r+b") as fh:  # a same-size write through the hardlink (root or owner)
        fh.write(data.replace(b"1.0", b"6.6"))
    healed = prep(settings, project.repo.url, "main")  # the moved mtime: no deep check needed
    assert healed.healed and "alpha/__init__.py of alpha was modified in place" in (
        healed.heal_reason or ""
    )
    assert env_python(healed, "import alpha; print(alpha.__version__)") == "1.0"
    # Envs built later for another lock get the good file too: the cache entry was replaced.
    project.set_deps(["alpha==1.0", "gamma==1.0"])
    project.repo.commit("another lock")
    other = prep(settings, project.repo.url, "main")
    assert other.built and env_python(other, "import alpha; print(alpha.__version__)") == "1.0"
    assert run_cli("verify", "--deep", "--cache-dir", str(settings.cache_dir)).returncode == 0
