"""Issue 11 §3: the hit path's index finds exactly what the full check finds, by stat alone."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from sunbeam_sync import SyncSettings
from sunbeam_sync.envs.baseline import walk_site
from sunbeam_sync.envs.index import INDEX, index_data, read_index
from sunbeam_sync.envs.manifest import Manifest
from sunbeam_sync.envs.verify import verify_env
from sunbeam_sync.settings import Bytecode
from tests.support.sync_project import Project, prep


def _site(env: Path) -> Path:
    return next(env.glob("lib/python*/site-packages"))


def _both(env: Path) -> tuple[str | None, str | None]:
    """(the hit path's verdict, the full check's verdict), as their messages."""
    quick = verify_env(env, env.name)
    full = verify_env(env, env.name, quick=False)
    return (str(quick) if quick else None), (str(full) if full else None)


def _indexed(env: Path) -> bool:
    """The index answered by itself (no fall back to the full check)."""
    index = read_index(env)
    manifest = Manifest.read(env)
    return index is not None and manifest is not None and index.check(env, manifest) is not None


def _plant(path: Path) -> Callable[[], None]:
    path.parent.mkdir(exist_ok=True)  # root ignores the read-only folders; a flow would not
    path.write_text("import os\n")
    return lambda: shutil.rmtree(path.parent) if path.parent.name == "brand_new" else path.unlink()


def _set_aside(path: Path) -> Callable[[], None]:
    """Unlink `path`, keeping its inode outside site-packages; the undo links it back.

    The file as built comes back (inode, mtime): anything else is a replacement, which the
    checks report. The file hardlinked with uv's cache is never written.
    """
    kept = path.parents[2] / f"kept-{path.name}"
    os.link(path, kept)
    path.unlink()

    def undo() -> None:
        path.unlink(missing_ok=True)
        os.link(kept, path)
        kept.unlink()

    return undo


def _grow(path: Path) -> Callable[[], None]:
    data = path.read_bytes()
    undo = _set_aside(path)
    path.write_bytes(data + b"# more\n")
    return undo


def _replace_same_size(path: Path) -> Callable[[], None]:
    data = path.read_bytes()
    undo = _set_aside(path)
    path.write_bytes(data.replace(b"1.0", b"6.6"))
    return undo


def _edit_in_place(path: Path) -> Callable[[], None]:
    # Through the hardlink into uv's cache too: the undo writes the bytes and the mtime back.
    data, st = path.read_bytes(), path.stat()
    path.write_bytes(data.replace(b"1.0", b"6.6"))

    def undo() -> None:
        path.write_bytes(data)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    return undo


def _extra_dist(site: Path) -> Callable[[], None]:
    extra = site / "sneaky-1.0.dist-info"
    extra.mkdir()
    (extra / "RECORD").write_text("")
    return lambda: shutil.rmtree(extra)


def _hidden_by_utime(path: Path) -> Callable[[], None]:
    # A planted file with its folder's mtime set back: ctime cannot be set back.
    st = os.stat(path.parent)
    undo = _plant(path)
    os.utime(path.parent, ns=(st.st_atime_ns, st.st_mtime_ns))
    return undo


DAMAGE: dict[str, tuple[Callable[[Path], Callable[[], None]], str]] = {
    "file grown": (lambda s: _grow(s / "alpha" / "__init__.py"), "changed size"),
    "file deleted": (lambda s: _set_aside(s / "alpha" / "__init__.py"), "is missing"),
    "same size, edited in place": (lambda s: _edit_in_place(s / "alpha" / "__init__.py"), "modified in place"),
    "same size, replaced": (lambda s: _replace_same_size(s / "alpha" / "__init__.py"), "was replaced"),
    ".pth planted": (lambda s: _plant(s / "evil.pth"), "evil.pth"),
    "module planted in a package": (lambda s: _plant(s / "alpha" / "extra.py"), "alpha/extra.py"),
    "new package planted": (lambda s: _plant(s / "brand_new" / "__init__.py"), "brand_new/"),
    "dist-info added": (_extra_dist, "sneaky-1.0.dist-info was installed after the build"),
    "planted, folder mtime reset": (lambda s: _hidden_by_utime(s / "sitecustomize.py"), "sitecustomize"),
}  # fmt: skip


def test_index_finds_what_the_full_check_finds(
    project: Project, settings: SyncSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv"))  # an edit in place reaches it
    env = Path(prep(settings, project.repo.url, "main").env)
    site = _site(env)
    assert (env / INDEX).is_file() and _both(env) == (None, None)
    for what, (damage, said) in DAMAGE.items():
        undo = damage(site)
        quick, full = _both(env)
        assert quick is not None and said in quick, (what, quick)
        assert quick == full, what
        assert _indexed(env), f"{what}: the index fell back to the full check"
        undo()
        assert _both(env) == (None, None), f"{what} undone, still damaged"
    # Folders changed since the build (above) are listed, not trusted: still a clean hit.
    assert _indexed(env)


def test_edited_record_falls_back_to_the_full_check(
    project: Project, settings: SyncSettings
) -> None:
    env = Path(prep(settings, project.repo.url, "main").env)
    site = _site(env)
    (site / "alpha" / "__init__.py").unlink()
    record = next(site.glob("alpha-*.dist-info")) / "RECORD"
    rows = [r for r in record.read_text().splitlines() if not r.startswith("alpha/__init__.py")]
    record.write_text("\n".join(rows) + "\n")
    assert not _indexed(env)
    quick, full = _both(env)
    assert quick == full and "RECORD of alpha was edited" in (quick or "")


def test_prefix_is_vouched_for_only_while_bin_is_as_built(
    project: Project, settings: SyncSettings
) -> None:
    # The hit path starts no interpreter while bin/ and the interpreter are as the build left
    # them (the build asked the interpreter for its prefix); anything added to bin/, or
    # bin/python replaced by another link, and the interpreter is asked again.
    env = Path(prep(settings, project.repo.url, "main").env)
    index = read_index(env)
    assert index is not None and index.prefix_holds(env)
    python = env / "bin" / "python"
    target = os.readlink(python)
    python.unlink()
    python.symlink_to(target)  # the same interpreter: still intact, but no longer vouched for
    assert not index.prefix_holds(env)
    assert _both(env) == (None, None)


def test_index_of_the_previous_format_still_answers_by_size(
    project: Project, settings: SyncSettings
) -> None:
    # An env indexed before files carried their mtime and inode (format 1) is neither a crash nor
    # a rebuild: its index answers as it did then (sizes), until the env is next built.
    env = Path(prep(settings, project.repo.url, "main").env)
    data = json.loads((env / INDEX).read_text())
    data["version"] = 1
    data["files"] = {d: [row[:2] for row in rows] for d, rows in data["files"].items()}
    (env / INDEX).write_text(json.dumps(data))
    assert _indexed(env) and _both(env) == (None, None)
    assert prep(settings, project.repo.url, "main").cache_hit
    undo = _grow(_site(env) / "alpha" / "__init__.py")
    quick, full = _both(env)
    assert quick == full and "changed size" in (quick or "") and _indexed(env)
    undo()
    (env / INDEX).write_text('{"version": 2, "bin_ctime": 0, "folders": {}, "records": {}, '
                             '"files": {"x": [["a"]]}}')  # fmt: skip
    assert _both(env) == (None, None)  # a damaged index: the full check answers


@pytest.mark.parametrize("state", ["missing", "garbled"])
def test_env_without_a_usable_index_is_checked_in_full(
    project: Project, settings: SyncSettings, state: str
) -> None:
    env = Path(prep(settings, project.repo.url, "main").env)
    if state == "missing":
        (env / INDEX).unlink()
    else:
        (env / INDEX).write_text('{"version": 1, "folders": [')
    assert read_index(env) is None
    assert _both(env) == (None, None)
    _plant(_site(env) / "alpha" / "extra.py")
    quick, full = _both(env)
    assert quick == full and "alpha/extra.py" in (quick or "")
    assert prep(settings, project.repo.url, "main").healed


@pytest.mark.parametrize("bytecode", [Bytecode.OFF, Bytecode.BACKGROUND])
def test_the_builds_index_is_what_a_fresh_look_at_the_env_records(
    project: Project, tmp_path: Path, bytecode: Bytecode
) -> None:
    # The build writes its index from what its RECORD check and its seal already saw (no second
    # `stat` per file): it must equal what looking at the finished env anew records.
    settings = SyncSettings(cache_dir=tmp_path / "cache", bytecode=bytecode)
    env = Path(prep(settings, project.repo.url, "main").env)
    manifest = Manifest.read(env)
    assert manifest is not None
    written = json.loads((env / INDEX).read_text())
    assert written == index_data(env, manifest)
    assert sum(len(rows) for rows in written["files"].values()) > 0
    # For the background compiler, the seal gave every folder of .py files in site-packages a
    # writable __pycache__ (and none without it); every other folder lost its write bits.
    background = bytecode is Bytecode.BACKGROUND
    for folder, dirs, files in os.walk(env):
        if os.path.basename(folder) == "__pycache__":
            continue
        in_site = folder.startswith(str(_site(env)))
        if any(f.endswith(".py") for f in files):
            assert ("__pycache__" in dirs) == (background and in_site), folder
        assert not os.stat(folder).st_mode & 0o222, folder


def test_one_walk_of_site_packages_lists_what_os_walk_does(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "pkg" / "sub").mkdir(parents=True)
    (site / "pkg" / "__pycache__").mkdir()
    (site / "pkg" / "__init__.py").write_text("")
    (site / "pkg" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")
    (site / "pkg" / "sub" / "data.txt").write_text("x")
    (site / "stray.pyc").write_bytes(b"")
    (site / "top.py").write_text("")
    (site / "linked.py").symlink_to(site / "top.py")
    (site / "broken").symlink_to(site / "nowhere")
    (site / "dirlink").symlink_to(site / "pkg", target_is_directory=True)
    tree = walk_site(site)
    listed = sorted(
        (os.path.relpath(os.path.join(d, f), site), os.path.islink(os.path.join(d, f)))
        for d, dirs, files in os.walk(site)
        if "__pycache__" not in d
        for f in files
        if not f.endswith(".pyc")
    )
    assert sorted((rel, link) for rel, _path, link in tree.files) == listed
    assert ("linked.py", True) in listed and ("broken", True) in listed
    assert sorted(tree.folders) == sorted(
        d for d, _dirs, _files in os.walk(site) if "__pycache__" not in d
    )
    assert tree.pycaches == [str(site / "pkg" / "__pycache__")]
    assert sorted(tree.bytecode) == sorted(
        [str(site / "stray.pyc"), str(site / "pkg" / "__pycache__" / "x.cpython-311.pyc")]
    )
    assert tree.without_pycache == [str(site)]  # pkg/ has its cache; sub/ holds no .py
