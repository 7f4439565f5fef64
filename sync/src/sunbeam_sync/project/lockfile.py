"""The project's uv.lock: read once, parsed once, checked for validity and required packages.

Parsing a real lock (600 KB of TOML) takes 0.2-0.3 s, more than the rest of a cache hit: what
the checks need of it (each package's name and source) is kept per lock content in the cache's
state folder, so each lock is parsed once per machine, not once per run.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sunbeam_sync.cache.files import atomic_write
from sunbeam_sync.cache.layout import CacheLayout
from sunbeam_sync.errors import BadInputError, LockfileError

_RELOCK = "run `uv lock` and commit uv.lock"


@dataclass(frozen=True)
class Lockfile:
    raw: bytes  # the exact bytes: the env key hashes them
    packages: list[dict[str, Any]]  # each package's name (as locked and canonical) and source
    where: str  # "'.' at main (abc123def456)", for messages
    project: Path  # the project folder (resolved) inside the checkout
    root: Path  # the checkout (resolved)

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
                target = (self.project / source[kind]).resolve()
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
    for name in ("pyproject.toml", "uv.lock"):
        path = project / name
        if (path.is_symlink() or path.exists()) and not path.resolve().is_relative_to(root):
            raise LockfileError(f"{name} in {where} is a symlink leading outside the checkout")
    if not (project / "pyproject.toml").is_file():
        raise LockfileError(f"no pyproject.toml in {where}")
    lock = project / "uv.lock"
    if not lock.is_file():
        raise LockfileError(f"no uv.lock in {where}: {_RELOCK} there")
    raw = lock.read_bytes()
    summary = layout.lock_summary(hashlib.sha256(raw).hexdigest())
    try:
        packages = json.loads(summary.read_text())["packages"]
        if not all("canonical" in p for p in packages):
            raise ValueError("a summary of an older shape")
    except (OSError, ValueError, KeyError, TypeError):
        packages = parse(raw, where)
        atomic_write(summary, json.dumps({"packages": packages}, separators=(",", ":")))
    return Lockfile(raw=raw, packages=packages, where=where, project=project, root=root)


def parse(raw: bytes, where: str) -> list[dict[str, Any]]:
    """Each package's name and source; parse first: a corrupt file is "not a valid lockfile"."""
    try:
        data = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LockfileError(
            f"uv.lock in {where} is not a valid lockfile ({exc}): {_RELOCK}"
        ) from None
    problem = _shape_problem(data)
    if problem:
        raise LockfileError(f"uv.lock in {where} is not a valid lockfile ({problem}): {_RELOCK}")
    return [
        {"name": p["name"], "canonical": _canonical(p["name"]), "source": p.get("source") or {}}
        for p in data["package"]
    ]


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


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


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
