"""What a caller asks `prepare` for, validated on construction (BadInputError, before git runs)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from sunbeam_sync.errors import BadInputError
from sunbeam_sync.git.refs import HEX_SHA, check_repo, validate_ref

# Group and extra names as PEP 685 normalises them: never anything uv could read as an option.
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
MAX_PROJECT_DIR = 1024


# A dataclass checked in __post_init__, not a pydantic model: importing pydantic costs more than
# a whole cache hit, and every `sunbeam-run` builds one of these. Errors are the sync's own
# one-line BadInputError, so callers get its message and exit code.
@dataclass(frozen=True)
class PrepareRequest:
    repo: str
    ref: str
    project_dir: str = "."
    python: str | None = None
    groups: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)
    # Packages the caller cannot work without (the agent needs `prefect`): checked in the lock
    # before anything is built, so a lock that can never run costs no build.
    required: list[str] = field(default_factory=list)
    # Run exactly this commit (full or abbreviated SHA), reported as `ref`: a rerun of a run on
    # a branch that has moved since. The result, the usage record and the log say `ref`.
    commit: str | None = None

    def __post_init__(self) -> None:
        checked = {
            "repo": check_repo(self.repo),
            "ref": validate_ref(self.ref),
            "project_dir": validate_project_dir(self.project_dir),
            "python": _optional_text(self.python, "python"),
            "groups": _names(self.groups, "group"),
            "extras": _names(self.extras, "extra"),
            "required": _texts(self.required, "required package"),
            "commit": _commit(self.commit),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)


def _optional_text(value: object, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise BadInputError(f"invalid {what}: give a string")
    return value


def _commit(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not HEX_SHA.match(value):
        shown = str(value).encode("unicode_escape").decode()[:80]
        raise BadInputError(f"invalid commit {shown!r}: give 7 to 40 hex digits")
    return value.lower()


def _texts(values: object, what: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise BadInputError(f"invalid {what} names: give a list")
    if not all(isinstance(v, str) for v in values):
        raise BadInputError(f"invalid {what} names: give strings")
    return list(values)


def _names(names: object, what: str) -> list[str]:
    checked = _texts(names, what)
    for name in checked:
        if not _NAME.match(name):
            shown = str(name).encode("unicode_escape").decode()[:80]
            raise BadInputError(
                f"invalid {what} name {shown!r}: use letters, digits, '-', '_' and '.', "
                "starting and ending with a letter or digit"
            )
    return checked


def validate_project_dir(project_dir: object) -> str:
    if not isinstance(project_dir, str) or any(ord(c) < 32 for c in project_dir):
        raise BadInputError("invalid project folder")
    if len(project_dir) > MAX_PROJECT_DIR or any(len(p) > 255 for p in project_dir.split("/")):
        raise BadInputError(
            f"project folder is {len(project_dir)} characters long: give a relative path of at "
            f"most {MAX_PROJECT_DIR} characters, each folder name at most 255"
        )
    path = PurePosixPath(project_dir or ".")
    if path.is_absolute() or ".." in path.parts or project_dir.startswith("-"):
        raise BadInputError(
            f"project folder {project_dir!r} must be a relative path inside the repository"
        )
    return str(path)
