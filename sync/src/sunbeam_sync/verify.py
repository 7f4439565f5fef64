"""Is a published environment still exactly what was built? (uv's own checks miss most damage.)"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from sunbeam_sync.interpreter import env_prefix
from sunbeam_sync.manifest import Manifest


@dataclass
class Damage:
    reason: str
    modified: list[str] = field(default_factory=list)  # dists whose files changed size or content
    missing: bool = False  # no env at all (not damage as such: nothing was ever published)

    def __str__(self) -> str:
        return self.reason


@dataclass
class RecordCheck:
    files: int = 0
    problems: list[str] = field(default_factory=list)
    modified: set[str] = field(default_factory=set)


def verify_env(
    env: Path, key: str, *, deep: bool = False, check_prefix: bool = True
) -> Damage | None:
    """None if `env` is intact; otherwise what is wrong with it."""
    manifest = Manifest.read(env)
    if manifest is None:
        return Damage("its manifest is missing or unreadable (an interrupted or foreign build)")
    if manifest.key != key:
        return Damage(f"its manifest is for key {manifest.key[:12]}, not {key[:12]}")
    if not (env / "pyvenv.cfg").is_file():
        return Damage("pyvenv.cfg is missing (uv would treat the base interpreter as the env)")
    python = env / "bin" / "python"
    if not python.exists():
        return Damage("bin/python is missing or points at an interpreter that no longer exists")
    if check_prefix:
        prefix = env_prefix(python)
        if prefix is None:
            return Damage("its interpreter does not start")
        if os.path.realpath(prefix) != os.path.realpath(env):
            return Damage(f"its interpreter's prefix is {prefix}, not the env itself")
    result = check_records(env, manifest, deep=deep)
    if result.problems:
        shown = "; ".join(result.problems[:3])
        more = f" (and {len(result.problems) - 3} more)" if len(result.problems) > 3 else ""
        return Damage(
            f"installed files differ from their RECORD: {shown}{more}", sorted(result.modified)
        )
    return None


def check_records(env: Path, manifest: Manifest, *, deep: bool = False) -> RecordCheck:
    site = env / manifest.site_packages
    prefix = str(site) + os.sep
    out = RecordCheck()
    expected = {d.dist_info for d in manifest.distributions}
    try:
        present = {p for p in os.listdir(site) if p.endswith(".dist-info")}
    except OSError:
        out.problems.append("site-packages is missing")
        return out
    for extra in sorted(present - expected):
        out.problems.append(f"{extra} was installed after the build")
    for dist in manifest.distributions:
        record = site / dist.dist_info / "RECORD"
        try:
            with record.open(newline="") as fh:
                rows = list(csv.reader(fh))
        except OSError:
            out.problems.append(f"{dist.name} {dist.version} is missing (no RECORD)")
            continue
        for row in rows:
            if len(row) < 3 or not row[0]:
                continue
            rel, digest, size = row[0], row[1], row[2]
            if rel.endswith(".pyc") or "__pycache__" in rel:
                continue
            # Plain concatenation: this loop runs for every installed file on every run.
            path = prefix + rel if not rel.startswith("..") else os.path.normpath(prefix + rel)
            out.files += 1
            try:
                st = os.stat(path)
            except OSError:
                out.problems.append(f"{rel} of {dist.name} is missing")
                continue
            if size and int(size) != st.st_size:
                out.problems.append(f"{rel} of {dist.name} changed size ({st.st_size} != {size})")
                out.modified.add(dist.name)
            elif deep and digest.startswith("sha256=") and _sha256(path) != digest[7:]:
                out.problems.append(f"{rel} of {dist.name} changed content")
                out.modified.add(dist.name)
    return out


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
