"""The manifest written into every environment before it is published.

Plain dataclasses read with `json`: every cache hit reads one, and pydantic's import alone costs
more than the rest of the hit. A manifest that does not have the expected shape reads as None
(the env is then rebuilt), as one that is not JSON at all.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

MANIFEST = "sunbeam-manifest.json"


@dataclass
class Distribution:
    name: str
    version: str
    dist_info: str  # folder name, relative to site-packages
    files: int


@dataclass
class Manifest:
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
    unowned: dict[str, int] = field(
        default_factory=dict
    )  # site-packages files no RECORD lists → size
    build_phases: dict[str, float] = field(default_factory=dict)  # seconds per build step
    # Paths several distributions install with different contents → the dist-info folder whose
    # copy uv kept (`overlaps`): only that distribution's RECORD row checks the file.
    overlaps: dict[str, str] = field(default_factory=dict)

    def write(self, env: Path) -> None:
        (env / MANIFEST).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, env: Path) -> Manifest | None:
        try:
            return cls.from_dict(json.loads((env / MANIFEST).read_text()))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """TypeError / ValueError unless `data` has the shape of a manifest."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}  # newer fields: ignored
        dists = [Distribution(**_only(d, Distribution)) for d in values.pop("distributions")]
        manifest = cls(**values, distributions=dists)
        if not isinstance(manifest.key, str) or not isinstance(manifest.site_packages, str):
            raise ValueError("not a manifest")
        if not all(isinstance(d.dist_info, str) and isinstance(d.files, int) for d in dists):
            raise ValueError("not a manifest")
        return manifest


def _only(data: dict[str, Any], kind: type) -> dict[str, Any]:
    known = {f.name for f in fields(kind)}
    return {k: v for k, v in data.items() if k in known}
