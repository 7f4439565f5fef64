"""The project's uv.lock: read once, parsed once, checked for validity and required packages."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from sunbeam_sync.errors import BadInputError, LockfileError

_RELOCK = "run `uv lock` and commit uv.lock"


@dataclass(frozen=True)
class Lockfile:
    raw: bytes  # the exact bytes: the env key hashes them
    data: dict  # type: ignore[type-arg]
    where: str  # "'.' at main (abc123def456)", for messages

    @property
    def packages(self) -> list[dict]:  # type: ignore[type-arg]
        return list(self.data["package"])

    @property
    def names(self) -> set[str]:
        return {canonicalize_name(p["name"]) for p in self.packages}

    def require(self, required: Iterable[str]) -> None:
        """Refuse a lock that lacks a package the caller cannot work without."""
        locked = self.names
        missing = [name for name in required if canonicalize_name(name) not in locked]
        if missing:
            raise LockfileError(
                f"uv.lock in {self.where} does not include {', '.join(missing)}: add it to the "
                f"project's dependencies, {_RELOCK}"
            )


def read_project(project: Path, where: str) -> Lockfile:
    """The lock of the project folder `project`, after checking the folder is a uv project."""
    if not project.is_dir():
        raise BadInputError(f"project folder {where} does not exist: check --project-dir")
    if not (project / "pyproject.toml").is_file():
        raise LockfileError(f"no pyproject.toml in {where}")
    lock = project / "uv.lock"
    if not lock.is_file():
        raise LockfileError(f"no uv.lock in {where}: {_RELOCK} there")
    return parse(lock.read_bytes(), where)


def parse(raw: bytes, where: str) -> Lockfile:
    """Parse first: a truncated or corrupt file is "not a valid lockfile", whatever it lacks."""
    try:
        data = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LockfileError(
            f"uv.lock in {where} is not a valid lockfile ({exc}): {_RELOCK}"
        ) from None
    problem = _shape_problem(data)
    if problem:
        raise LockfileError(f"uv.lock in {where} is not a valid lockfile ({problem}): {_RELOCK}")
    return Lockfile(raw=raw, data=data, where=where)


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
