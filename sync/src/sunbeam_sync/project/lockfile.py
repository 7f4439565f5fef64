"""The project's uv.lock: read once, parsed once, checked for validity and required packages.

Parsing a real lock (600 KB of TOML) takes 0.2-0.3 s, more than the rest of a cache hit: what
the checks need of it (each package's name and source) is kept per lock content in the cache's
state folder, so each lock is parsed once per machine, not once per run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sunbeam_sync.cache.files import atomic_write
from sunbeam_sync.cache.layout import CacheLayout
from sunbeam_sync.errors import BadInputError, LockfileError
from sunbeam_sync.project.workspace import (
    import_root,
    local_path,
    local_paths,
    lock_folder,
    member_name,
)

_RELOCK = "run `uv lock` and commit uv.lock"


@dataclass(frozen=True)
class GitSource:
    """A package of the lock that uv fetches from a git repository (`source = { git = ... }`)."""

    name: str
    url: str  # the repository, as uv fetches it (no `?rev=`, no `#commit`)
    commit: str  # the full commit the lock pins

    def missing(self) -> LockfileError:
        """The error for a pinned commit its repository does not have."""
        return LockfileError(
            f"uv.lock pins {self.name} to commit {self.commit[:12]} of {self.url}, which that "
            "repository does not have (history rewritten, or the commit never pushed): push that "
            f"commit there, or run `uv lock --upgrade-package {self.name}` and commit uv.lock"
        )


@dataclass(frozen=True)
class Lockfile:
    raw: bytes  # the exact bytes: the env key hashes them
    packages: list[dict[str, Any]]  # each package's name (as locked and canonical), source, deps
    where: str  # "'.' at main (abc123def456)", for messages
    project: Path  # the project folder (resolved) inside the checkout
    root: Path  # the checkout (resolved)
    folder: Path  # where uv.lock is: the project, or the root of the workspace it is a member of
    members: list[str]  # the workspace's members (canonical names; empty for a lone project)

    @property
    def package(self) -> str | None:
        """The workspace member synced, when the project is a member below the lock; else None."""
        if self.folder == self.project:
            return None
        name = member_name(self.packages, self.folder, self.project)
        return name if name in self.members else None  # a path dependency is no member

    @property
    def check_inputs(self) -> list[Path]:
        """Every file `uv lock --check` reads: the lock's folder's uv.lock, uv.toml and
        pyproject.toml, and the pyproject.toml of the project and of every local package."""
        files = [self.folder / name for name in ("uv.lock", "uv.toml", "pyproject.toml")]
        local = sorted({p for pkg in self.packages if (p := local_path(pkg)) is not None})
        files += [self.folder / rel / "pyproject.toml" for rel in local]
        return [*files, self.project / "pyproject.toml"]

    @property
    def pythonpath(self) -> list[str]:
        """The flow's path: the project's code, then every local package the env needs."""
        own = import_root(self.project)
        paths = [own, self.project] if own != self.project else [self.project]
        target = member_name(self.packages, self.folder, self.project)
        for rel in local_paths(self.packages, self.members, target):
            root = import_root(self.folder / rel)
            if root not in paths and root.resolve().is_relative_to(self.root):
                paths.append(root)
        return [str(p) for p in paths]

    @property
    def git_sources(self) -> list[GitSource]:
        """The packages locked from a git repository: where, and at which commit."""
        found = []
        for package in self.packages:
            value = (package.get("source") or {}).get("git")
            if isinstance(value, str):
                url, _, commit = value.partition("#")
                found.append(GitSource(package["name"], url.partition("?")[0], commit))
        return found

    @property
    def names(self) -> set[str]:
        return {p["canonical"] for p in self.packages}

    def require(self, required: Iterable[str]) -> None:
        """Refuse a lock that lacks a package the caller cannot work without."""
        locked = self.names
        # A name already in canonical form is its own canonical name: no `packaging` import
        # (50 ms under load) on a hit for the usual `prefect`.
        missing = [n for n in required if n.lower() not in locked and _canonical(n) not in locked]
        if missing:
            raise LockfileError(
                f"uv.lock in {self.where} does not include {', '.join(missing)}: add it to the "
                f"project's dependencies, {_RELOCK}"
            )

    def check_sources(self) -> None:
        """Refuse packages that come neither from an index nor from inside the repository.

        `--no-install-local` leaves path packages out silently (ImportError later), and a
        `git = "file://..."` source gets its build backend run during the build: both would make
        the env depend on this machine rather than on the commit.
        """
        for package in self.packages:
            outside = self._outside(package.get("source") or {})
            if outside:
                raise LockfileError(
                    f"uv.lock in {self.where}: package {package['name']} comes from {outside}, "
                    "outside the repository; use a package index or a path inside the repository "
                    "(or set SUNBEAM_ALLOW_EXTERNAL_SOURCES=1 to allow it)"
                )

    def _outside(self, source: dict) -> str | None:  # type: ignore[type-arg]
        for kind in ("path", "directory", "editable", "virtual"):
            if isinstance(source.get(kind), str):
                target = (self.folder / source[kind]).resolve()  # relative to the lock
                inside = target.is_relative_to(self.root)
                return None if inside else f"{kind} {str(target)[:200]!r}"
        for kind in ("git", "url"):
            value = source.get(kind)
            if isinstance(value, str) and value.startswith("file:"):
                return f"{kind} {value.split('#')[0][:200]!r}"
        return None


def read_project(root: Path, project_dir: str, where: str, layout: CacheLayout) -> Lockfile:
    """The lock of `project_dir` in the checkout `root`, after checking it is a uv project there.

    Nothing may lead outside the checkout: a symlinked project folder, pyproject.toml or uv.lock
    pointing elsewhere on this machine would build whatever that file says.
    """
    root = root.resolve()
    project = (root / project_dir).resolve()
    if not project.is_relative_to(root):
        raise BadInputError(f"project folder {where} leads outside the checkout (a symlink)")
    if not project.is_dir():
        raise BadInputError(f"project folder {where} does not exist: check --project-dir")
    _inside(root, project, ("pyproject.toml", "uv.lock"), where)
    if not (project / "pyproject.toml").is_file():
        raise LockfileError(f"no pyproject.toml in {where}")
    folder = lock_folder(root, project, where, _RELOCK)
    _inside(root, folder, ("pyproject.toml", "uv.lock"), where)
    lock = folder / "uv.lock"
    if not lock.is_file():
        raise LockfileError(f"no uv.lock in {where}: {_RELOCK} there")
    raw = lock.read_bytes()
    summary = layout.lock_summary(hashlib.sha256(raw).hexdigest())
    try:
        data = json.loads(summary.read_text())
        if data.get("shape") != _SUMMARY_SHAPE:
            raise ValueError("a summary of an older shape")
        packages, members = data["packages"], data["members"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        packages, members = parse(raw, where)
        found = {"shape": _SUMMARY_SHAPE, "packages": packages, "members": members}
        atomic_write(summary, json.dumps(found, separators=(",", ":")))
    parsed = Lockfile(raw, packages, where, project, root, folder, members)
    if folder != project and parsed.package is None:
        at = os.path.relpath(folder, root)
        raise LockfileError(
            f"{where} has no uv.lock and is not a member of the workspace at "
            f"{'the repository root' if at == '.' else repr(at)}: add it to "
            "[tool.uv.workspace] members there, run `uv lock` and commit uv.lock"
        )
    return parsed


_SUMMARY_SHAPE = 2  # bump when what `parse` keeps changes


def _inside(root: Path, folder: Path, names: tuple[str, ...], where: str) -> None:
    for name in names:
        path = folder / name
        if (path.is_symlink() or path.exists()) and not path.resolve().is_relative_to(root):
            raise LockfileError(f"{name} in {where} is a symlink leading outside the checkout")


def parse(raw: bytes, where: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Each package's name, source and dependencies, and the workspace's members.

    Parse first: a corrupt file is "not a valid lockfile".
    """
    try:
        data = tomllib.loads(_without_artifacts(raw.decode()))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LockfileError(
            f"uv.lock in {where} is not a valid lockfile ({exc}): {_RELOCK}"
        ) from None
    problem = _shape_problem(data)
    if problem:
        raise LockfileError(f"uv.lock in {where} is not a valid lockfile ({problem}): {_RELOCK}")
    packages = [
        {
            "name": p["name"],
            "canonical": _canonical(p["name"]),
            "source": p.get("source") or {},
            "deps": _dependencies(p),
        }
        for p in data["package"]
    ]
    manifest = data.get("manifest")
    members = manifest.get("members", []) if isinstance(manifest, dict) else []
    return packages, [_canonical(m) for m in members if isinstance(m, str)]


def _without_artifacts(text: str) -> str:
    """The lock without its `sdist = {...}` lines and `wheels = [...]` arrays.

    They are 95% of a lock's bytes (a URL, hash, size and date per file) and nothing here reads
    them: parsing the rest costs a tenth. uv, which installs them, reads and checks them itself.
    uv writes both at the start of a line, and each wheels array ends with a `]` line.
    """
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if skipping:
            skipping = not line.startswith("]")
        elif line.startswith("wheels = ["):
            skipping = not line.rstrip().endswith("]")
        elif not line.startswith("sdist = "):
            kept.append(line)
    return "".join(kept)


def _dependencies(package: dict) -> list[str]:  # type: ignore[type-arg]
    """Names of everything the package depends on, through any extra or group."""
    lists = [package.get("dependencies")]
    for table in ("optional-dependencies", "dev-dependencies"):
        if isinstance(package.get(table), dict):
            lists += list(package[table].values())
    names = {
        _canonical(dep["name"])
        for deps in lists
        if isinstance(deps, list)
        for dep in deps
        if isinstance(dep, dict) and isinstance(dep.get("name"), str)
    }
    return sorted(names)


_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def stale_detail(project: Path) -> str:
    """Which package names pyproject.toml asks for that uv.lock lacks (and the reverse), as
    " (tabulate is in pyproject.toml, not in uv.lock)"; "" when only versions differ."""
    try:
        wanted = tomllib.loads((project / "pyproject.toml").read_text())
        lock = tomllib.loads((project / "uv.lock").read_text())
        name = _canonical(wanted["project"]["name"])
        asked = {_canonical(m.group(1)) for d in wanted["project"].get("dependencies", [])
                 if (m := _REQUIREMENT_NAME.match(d))}  # fmt: skip
        root = next(p for p in lock["package"] if _canonical(p["name"]) == name)
        locked = {_canonical(r["name"]) for r in root.get("metadata", {}).get("requires-dist", [])}
    except (OSError, ValueError, KeyError, TypeError, StopIteration, AttributeError):
        return ""
    said = []
    if added := sorted(asked - locked):
        said.append(f"{', '.join(added)} in pyproject.toml, not in uv.lock")
    if dropped := sorted(locked - asked):
        said.append(f"{', '.join(dropped)} in uv.lock, not in pyproject.toml")
    return f" ({'; '.join(said)})" if said else ""


_SEPARATORS = re.compile(r"[-_.]+")


def _canonical(name: str) -> str:
    """PEP 503's normalised name, by its own definition: a new lock is parsed on the way to
    its first run, and importing `packaging.utils` for this costs 0.05-0.13 s there."""
    return _SEPARATORS.sub("-", name).lower()


def _shape_problem(data: dict) -> str | None:  # type: ignore[type-arg]
    if not isinstance(data.get("version"), int):
        return "no lockfile version"
    packages = data.get("package")
    if not isinstance(packages, list) or not packages:
        return "no [[package]] entries"
    for entry in packages:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            return "a [[package]] entry has no name"
    return None
