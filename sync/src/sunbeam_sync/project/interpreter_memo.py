"""Interpreter discovery remembered across processes, in the cache's state folder.

`uv python find` plus the probe of what it found cost two process starts (0.1-0.3 s) on every
`sunbeam-run`, a new process per flow run, for an answer that changes only when something it
depends on changes. So the answer is kept under a key of all of that: the request, the project's
pins, uv's own variables and PATH, the identity of the uv binary and of every PATH folder (a
Python installed or removed changes its folder), and for the probe, the interpreter file's own
identity. Anything else changed and the key is new: uv is asked again.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sunbeam_sync.cache.files import atomic_write
from sunbeam_sync.cache.layout import CacheLayout
from sunbeam_sync.project.interpreter import Interpreter, find_interpreter, project_pins
from sunbeam_sync.run.uv import uv_bin

_ENV = ("UV_PYTHON", "PYENV", "CONDA_PREFIX")  # what steers uv's discovery (VIRTUAL_ENV is dropped)
_KEEP = 64


def _identity(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def remembered_interpreter(
    request: str | None, project: Path, layout: CacheLayout, workspace: Path | None = None
) -> Interpreter:
    """`find_interpreter`, answered from the cache's memo when nothing it depends on changed."""
    key = _key(request, project_pins(project, workspace))
    memo = _Memo(layout.interpreters)
    found = memo.interpreter(key)
    if found is None:
        found = find_interpreter(request, project, workspace)
        memo.remember(key, found)
    return found


def _key(request: str | None, pins: str) -> str:
    path = os.environ.get("PATH", "")
    inputs: dict[str, Any] = {
        "request": request,
        "pins": pins,
        "env": sorted((k, v) for k, v in os.environ.items() if k.startswith(_ENV)),
        "path": path,
        "folders": [_identity(folder) for folder in path.split(os.pathsep) if folder],
        "uv": [uv_bin(), _identity(uv_bin())],
    }
    return json.dumps(inputs, sort_keys=True, separators=(",", ":"))


class _Memo:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.entries: dict[str, dict[str, Any]] = dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            self.entries = {}

    def interpreter(self, key: str) -> Interpreter | None:
        entry = self.entries.get(key)
        try:
            if entry is None or entry["identity"] != _identity(entry["interpreter"]["path"]):
                return None
            return Interpreter(**entry["interpreter"])
        except (KeyError, TypeError):
            return None

    def remember(self, key: str, interpreter: Interpreter) -> None:
        self.entries[key] = {
            "interpreter": asdict(interpreter),
            "identity": _identity(interpreter.path),
        }
        # Last writer wins: an entry lost to a concurrent writer costs one more `uv python find`.
        atomic_write(self.path, json.dumps(dict(list(self.entries.items())[-_KEEP:])))
