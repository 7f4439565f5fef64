"""A local wheelhouse for hermetic installs: the platform venv's own distributions, repacked.

Flows need `prefect` (and its whole dependency closure) in their environment, but tests may not
download anything. Every installed distribution is a wheel unpacked into site-packages; its
`*.dist-info/RECORD` lists the files and its `WHEEL` keeps the original tags, so zipping those
files back gives an installable wheel (tiny test-only wheels: `tests.support.wheels`).
Point uv at the folder with `uv lock --no-index --find-links DIR`.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.wheels import _digest

_SKIP_IN_DIST_INFO = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "uv_cache.json"}


def _wheel_tag(wheel_file: str) -> str:
    """The filename tag of a wheel from its WHEEL file (several `Tag:` lines compress)."""
    tags = [
        line.split(":", 1)[1].strip() for line in wheel_file.splitlines() if line.startswith("Tag:")
    ]
    if not tags:
        raise ValueError("WHEEL file has no Tag lines")
    parts: list[list[str]] = [[], [], []]
    for tag in tags:
        for i, piece in enumerate(tag.split("-")):
            for p in piece.split("."):
                if p not in parts[i]:
                    parts[i].append(p)
    return "-".join(".".join(p) for p in parts)


def write_wheel(path: Path, files: dict[str, bytes]) -> Path:
    """Write a wheel whose RECORD lists every file with its hash (dist-info must be in `files`)."""
    dist_info = next(name.split("/", 1)[0] for name in files if ".dist-info/" in name)
    record_name = f"{dist_info}/RECORD"
    lines = [f"{name},{_digest(data)},{len(data)}" for name, data in files.items()]
    lines.append(f"{record_name},,")
    # Stored, not deflated: these wheels never leave the machine and zipping is the slow part.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(record_name, "\n".join(lines) + "\n")
    return path


def repack_installed(dist: metadata.Distribution, dest: Path) -> Path:
    """Rebuild the wheel an installed distribution came from, into `dest`."""
    files: dict[str, bytes] = {}
    dist_info_name = None
    for entry in dist.files or []:
        posix = entry.as_posix()
        if posix.startswith("..") or "__pycache__" in posix or posix.endswith(".pyc"):
            continue  # console scripts (regenerated from entry_points.txt) and bytecode
        top = posix.split("/", 1)[0]
        if top.endswith(".dist-info"):
            dist_info_name = top
            if posix.split("/", 1)[1] in _SKIP_IN_DIST_INFO:
                continue
        located = Path(str(entry.locate()))
        if located.is_file():
            files[posix] = located.read_bytes()
    if dist_info_name is None:
        raise ValueError(f"{dist.metadata['Name']} has no dist-info in its RECORD")
    tag = _wheel_tag(files[f"{dist_info_name}/WHEEL"].decode())
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    return write_wheel(dest / f"{name}-{dist.version}-{tag}.whl", files)


def dependency_closure(roots: Iterable[str]) -> list[metadata.Distribution]:
    """Installed distributions needed by `roots`, extras included (markers for this interpreter)."""
    seen: dict[str, metadata.Distribution] = {}
    done: set[tuple[str, str]] = set()
    todo: list[tuple[str, str]] = [(canonicalize_name(r), "") for r in roots]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in done:
            continue
        done.add((name, extra))
        dist = seen.setdefault(name, metadata.distribution(name))
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is not None and not req.marker.evaluate({"extra": extra}):
                continue
            if req.marker is None and extra:
                continue  # already taken with the base requirements
            dep = canonicalize_name(req.name)
            todo.append((dep, ""))
            todo.extend((dep, canonicalize_name(e)) for e in req.extras)
    return list(seen.values())


def build_wheelhouse(dest: Path, roots: Iterable[str] = ("prefect",)) -> Path:
    """Repack `roots` and their dependency closure from this interpreter's environment."""
    dest.mkdir(parents=True, exist_ok=True)
    for dist in dependency_closure(roots):
        repack_installed(dist, dest)
    return dest
