"""What a hit no longer recomputes per process: interpreter discovery, the parsed uv.lock."""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from pathlib import Path

import pytest

from sunbeam_sync.cache.layout import CacheLayout
from sunbeam_sync.errors import LockfileError
from sunbeam_sync.project.interpreter_memo import remembered_interpreter
from sunbeam_sync.project.lockfile import parse, read_project

PYPROJECT = '[project]\nname = "p"\nversion = "0"\nrequires-python = ">=3.11"\ndependencies = []\n'


def test_interpreter_memo_is_used_only_while_its_inputs_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, cache = tmp_path / "project", CacheLayout.open(tmp_path / "cache")
    project.mkdir()
    (project / "pyproject.toml").write_text(PYPROJECT)
    memo_file = cache.interpreters
    first = remembered_interpreter(None, project, cache)
    memo = json.loads(memo_file.read_text())
    assert len(memo) == 1 and next(iter(memo.values()))["interpreter"]["path"] == first.path
    # The remembered answer is what uv said: shown by planting a wrong version in the memo...
    key = next(iter(memo))
    memo[key]["interpreter"]["version"] = "0.0.1"
    memo_file.write_text(json.dumps(memo))
    assert remembered_interpreter(None, project, cache).version == "0.0.1"
    # ...which is dropped once the interpreter file is no longer the one probed,
    memo[key]["identity"] = [0, 0, 0, 0]
    memo_file.write_text(json.dumps(memo))
    assert remembered_interpreter(None, project, cache).version == first.version
    # and not used for other inputs (here a PATH with one folder more).
    memo = json.loads(memo_file.read_text())
    memo[key]["interpreter"]["version"] = "0.0.1"
    memo_file.write_text(json.dumps(memo))
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert remembered_interpreter(None, project, cache).version == first.version
    assert len(json.loads(memo_file.read_text())) == 2


def test_lock_is_parsed_once_and_a_bad_one_never_remembered(tmp_path: Path) -> None:
    root, cache = tmp_path / "checkout", CacheLayout.open(tmp_path / "cache")
    state = cache.state
    root.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT)
    lock = '\nversion = 1\n[[package]]\nname = "Typing_Extensions"\nversion = "4"\n'
    (root / "uv.lock").write_text(lock)
    parsed = read_project(root, ".", "here", cache)
    parsed.require(["typing-extensions", "typing_extensions"])
    (summary,) = state.glob("lock-*.json")
    assert json.loads(summary.read_text())["packages"][0]["canonical"] == "typing-extensions"
    # The same bytes again: answered from the summary (a planted name shows it was read).
    data = json.loads(summary.read_text())
    data["packages"].append({"name": "planted", "canonical": "planted", "source": {}})
    summary.write_text(json.dumps(data))
    read_project(root, ".", "here", cache).require(["planted"])
    with pytest.raises(LockfileError, match="does not include prefect"):
        read_project(root, ".", "here", cache).require(["prefect"])
    shutil.rmtree(state)
    state.mkdir()
    (root / "uv.lock").write_text("version = [")
    with pytest.raises(LockfileError, match="not a valid lockfile"):
        read_project(root, ".", "here", cache)
    assert not list(state.iterdir())


@pytest.mark.parametrize("lock", ["pipeline/uv.lock", "benchmarks/shapes/dbt/uv.lock"])
def test_lock_summary_is_what_a_full_parse_says(lock: str) -> None:
    # The summary parses the lock without its wheel and sdist lines (95% of its bytes).
    raw = (Path(__file__).resolve().parents[2] / lock).read_bytes()
    packages, members = parse(raw, lock)
    full = tomllib.loads(raw.decode())
    assert [p["name"] for p in packages] == [p["name"] for p in full["package"]]
    assert [p["source"] for p in packages] == [p.get("source", {}) for p in full["package"]]
    deps = [sorted({d["name"] for d in p.get("dependencies", [])}) for p in full["package"]]
    assert all(set(d) <= set(p["deps"]) for d, p in zip(deps, packages, strict=True))
    assert members == full.get("manifest", {}).get("members", [])
