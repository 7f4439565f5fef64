"""The manifest written into every environment before it is published."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

MANIFEST = "sunbeam-manifest.json"


class Distribution(BaseModel):
    name: str
    version: str
    dist_info: str  # folder name, relative to site-packages
    files: int


class Manifest(BaseModel):
    key: str
    inputs: dict[str, Any]
    python: str  # the base interpreter the env was created from
    site_packages: str  # relative to the env
    distributions: list[Distribution]
    uv_version: str
    link_mode: str
    built_at: float
    build_seconds: float
    repo: str
    commit: str
    # The baseline (see `baseline`); None/empty in manifests written before it existed.
    pyvenv_cfg: str | None = None
    interpreter: str | None = None  # realpath of bin/python at build time
    interpreter_stat: list[int] | None = None  # its size and mtime_ns
    unowned: dict[str, int] = {}
    build_phases: dict[
        str, float
    ] = {}  # seconds per build step (uv venv, uv sync, checks...)  # site-packages files no RECORD lists (uv venv's own) → size

    def write(self, env: Path) -> None:
        (env / MANIFEST).write_text(self.model_dump_json(indent=2))

    @classmethod
    def read(cls, env: Path) -> Manifest | None:
        try:
            return cls.model_validate(json.loads((env / MANIFEST).read_text()))
        except (OSError, ValueError):
            return None
