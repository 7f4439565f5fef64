"""Is a published environment still exactly what was built? (uv's own checks miss most damage.)"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from sunbeam_sync.cache.files import atomic_write
from sunbeam_sync.cache.layout import CacheLayout
from sunbeam_sync.envs.baseline import (
    differing,
    file_rows,
    interpreter_identity,
    read_hashes,
    read_record,
    sha256,
    site_files,
)
from sunbeam_sync.envs.index import (
    NO_SIZE,
    UNKNOWN,
    EnvIndex,
    FileRow,
    file_problem,
    file_row,
    read_index,
)
from sunbeam_sync.envs.manifest import Distribution, Manifest
from sunbeam_sync.project.interpreter import env_prefix


@dataclass
class Damage:
    reason: str
    modified: list[str] = field(default_factory=list)  # dists whose files changed size or content
    missing: bool = False  # no env at all (not damage as such: nothing was ever published)
    files: list[str] = field(default_factory=list)  # site-relative files that changed

    def __str__(self) -> str:
        return self.reason


@dataclass
class RecordCheck:
    files: int = 0
    problems: list[str] = field(default_factory=list)
    modified: set[str] = field(default_factory=set)
    owned: dict[str, str] = field(default_factory=dict)  # site-relative path → distribution
    changed: set[str] = field(default_factory=set)  # site-relative files that changed
    # With `check_records(keep=True)`: each checked file's `stat`, by site-relative path, and
    # the index's rows of each distribution (`index.FileRow`), as the build ends with them.
    stats: dict[str, os.stat_result] = field(default_factory=dict)
    rows: dict[str, list[FileRow]] = field(default_factory=dict)


def verify_env(
    env: Path, key: str, *, deep: bool = False, check_prefix: bool = True, quick: bool = True
) -> Damage | None:
    """None if `env` is intact; otherwise what is wrong with it.

    `quick` (the hit path) answers from the env's index (`envindex`) where it can: the same
    checks by stat alone. `deep` and `quick=False` always read every RECORD and folder; they too
    compare each file's mtime and inode with the index's (the one `stat` serves both).
    """
    manifest = Manifest.read(env)
    if manifest is None:
        return Damage("its manifest is missing or unreadable (an interrupted or foreign build)")
    if manifest.key != key:
        return Damage(f"its manifest is for key {manifest.key[:12]}, not {key[:12]}")
    index = read_index(env)
    hit = index if quick and not deep else None
    damage = _venv_damage(env, manifest, check_prefix, hit)
    if damage is not None:
        return damage
    found = hit.check(env, manifest) if hit is not None else None
    if found is not None:
        return _file_damage(found.problems, found.modified, found.stray, found.changed)
    ids = index.identities() if index is not None else None
    result = check_records(env, manifest, deep=deep and read_hashes(env) is None, identities=ids)
    damage = _file_damage(result.problems, result.modified, [], result.changed)
    if damage is None:
        damage = _file_damage([], set(), stray_files(env, manifest, result))
    if damage is None and deep:
        damage = _deep_damage(env, manifest, result)
    return damage


def _file_damage(
    problems: list[str],
    modified: set[str],
    stray: list[str],
    changed: set[str] | frozenset[str] = frozenset(),
) -> Damage | None:
    if problems:
        return Damage(
            f"installed files differ from their RECORD: {_shown(problems)}",
            sorted(modified),
            files=sorted(changed),
        )
    if stray:
        return Damage(f"site-packages holds files no distribution installed: {_shown(stray)}")
    return None


def _venv_damage(
    env: Path, manifest: Manifest, check_prefix: bool, index: EnvIndex | None = None
) -> Damage | None:
    cfg = env / "pyvenv.cfg"
    if not cfg.is_file():
        return Damage("pyvenv.cfg is missing (uv would treat the base interpreter as the env)")
    if manifest.pyvenv_cfg is not None and cfg.read_text() != manifest.pyvenv_cfg:
        changed = sorted(set(cfg.read_text().splitlines()) - set(manifest.pyvenv_cfg.splitlines()))
        return Damage(f"pyvenv.cfg differs from what was built: {'; '.join(changed)[:200]}")
    python = env / "bin" / "python"
    if not python.exists():
        return Damage("bin/python is missing or points at an interpreter that no longer exists")
    if manifest.interpreter is not None:
        target, stat = interpreter_identity(env)
        if target != manifest.interpreter or stat != manifest.interpreter_stat:
            return Damage(
                f"bin/python is not the interpreter the env was built with ({target}, "
                f"built with {manifest.interpreter})"
            )
    # The index vouches for the prefix the build saw only if the interpreter is the one built with.
    trusted = index is not None and manifest.interpreter is not None and index.prefix_holds(env)
    if check_prefix and not trusted:
        prefix = env_prefix(python)
        if prefix is None:
            return Damage("its interpreter does not start")
        if os.path.realpath(prefix) != os.path.realpath(env):
            return Damage(f"its interpreter's prefix is {prefix}, not the env itself")
    return None


def stray_files(env: Path, manifest: Manifest, records: RecordCheck) -> list[str]:
    """Files in site-packages that no distribution's RECORD lists and the build did not leave."""
    known = manifest.unowned
    site = env / manifest.site_packages
    return [rel for rel, _path in site_files(site) if rel not in records.owned and rel not in known]


def _deep_damage(env: Path, manifest: Manifest, records: RecordCheck) -> Damage | None:
    hashes = read_hashes(env)
    if hashes is None:
        return None  # an env from before baselines: check_records compared RECORD hashes
    changed = differing(env / manifest.site_packages, hashes)
    if not changed:
        return None
    dists = sorted({records.owned.get(rel, "") for rel in changed} - {""})
    return Damage(
        f"files changed content since the build: {_shown([f'{r} changed content' for r in changed])}",
        dists,
        files=changed,
    )


def check_records(
    env: Path,
    manifest: Manifest,
    *,
    deep: bool = False,
    identities: dict[str, tuple[int, int]] | None = None,
    keep: bool = False,
) -> RecordCheck:
    """Every RECORD row against the file on disk: there, its size, and (given the index's
    `identities`) the mtime and inode it had when the build ended.

    `keep` (a build's): keep each file's `stat` and the index's rows in the result, so the
    baseline, the seal and the index that follow need no `stat` and no RECORD of their own."""
    site = env / manifest.site_packages
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
        _check_dist(site, dist, out, deep, manifest.overlaps, identities or {}, keep)
    return out


def _check_dist(
    site: Path,
    dist: Distribution,
    out: RecordCheck,
    deep: bool,
    overlaps: dict[str, str],
    identities: dict[str, tuple[int, int]],
    keep: bool,
) -> None:
    prefix = str(site) + os.sep
    name, dist_info = dist.name, dist.dist_info
    try:
        rows = read_record(site, dist_info)
    except OSError:
        out.problems.append(f"{name} {dist.version} is missing (no RECORD)")
        return
    if dist.files and len(rows) != dist.files:
        out.problems.append(
            f"the RECORD of {name} was edited ({len(rows)} rows, built with {dist.files})"
        )
        out.modified.add(name)
        out.changed.add(f"{dist_info}/RECORD")
    kept: list[FileRow] = out.rows.setdefault(dist_info, []) if keep else []
    for rel, digest, size in file_rows(rows):
        if overlaps.get(rel, dist_info) != dist_info:
            continue  # uv kept another owner's copy of this path: that owner's row checks it
        if not rel.startswith(".."):
            out.owned[rel] = name
        # Plain concatenation: this loop runs for every installed file on every run.
        path = prefix + rel if not rel.startswith("..") else os.path.normpath(prefix + rel)
        out.files += 1
        try:
            st = os.stat(path)
        except OSError:
            out.problems.append(f"{rel} of {name} is missing")
            continue
        if keep:
            out.stats[rel] = st
            kept.append(file_row(rel, size, st.st_mtime_ns, st.st_ino))
        mtime, ino = identities.get(rel, (UNKNOWN, UNKNOWN))
        found = file_problem(rel, name, st, int(size) if size else NO_SIZE, mtime, ino)
        if found is not None:
            out.problems.append(found[0])
            out.modified.add(name)
            if found[1]:
                out.changed.add(rel)  # a file healing looks for in uv's cache
        elif deep and digest.startswith("sha256=") and sha256(path) != digest[7:]:
            out.problems.append(f"{rel} of {name} changed content")
            out.modified.add(name)
            out.changed.add(rel)


def _shown(problems: list[str]) -> str:
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more


# Damage markers: `verify` (deep or not) flags an env whose next use must rebuild it.
def write_damage(layout: CacheLayout, key: str, damage: Damage) -> None:
    found = {"reason": str(damage), "modified": damage.modified, "files": damage.files}
    atomic_write(layout.damage_marker(key), json.dumps(found))


def read_damage(marker: Path) -> Damage:
    text = marker.read_text()
    try:
        data = json.loads(text)
        return Damage(
            str(data["reason"]), list(data.get("modified", [])), files=list(data.get("files", []))
        )
    except (ValueError, KeyError, TypeError):
        return Damage(text.strip())  # a marker from before it was JSON
