"""What a caller asks `prepare` for, validated on construction (BadInputError, before git runs)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from sunbeam_sync.errors import BadInputError
from sunbeam_sync.refs import validate_ref
from sunbeam_sync.repourl import check_repo

# Group and extra names as PEP 685 normalises them: never anything uv could read as an option.
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
MAX_PROJECT_DIR = 1024


class PrepareRequest(BaseModel):
    repo: str
    ref: str
    project_dir: str = "."
    python: str | None = None
    groups: list[str] = Field(default_factory=list)
    extras: list[str] = Field(default_factory=list)
    # Packages the caller cannot work without (the agent needs `prefect`): checked in the lock
    # before anything is built, so a lock that can never run costs no build.
    required: list[str] = Field(default_factory=list)

    # BadInputError is not a ValueError: pydantic lets it through unchanged, so callers get the
    # sync's own one-line message and exit code rather than a ValidationError.
    @field_validator("repo", mode="before")
    @classmethod
    def _repo(cls, value: object) -> str:
        return check_repo(value)

    @field_validator("ref", mode="before")
    @classmethod
    def _ref(cls, value: object) -> str:
        return validate_ref(value)

    @field_validator("project_dir", mode="before")
    @classmethod
    def _project_dir(cls, value: object) -> str:
        return validate_project_dir(value)

    @field_validator("groups", "extras")
    @classmethod
    def _names(cls, names: list[str], info: ValidationInfo) -> list[str]:
        what = "group" if info.field_name == "groups" else "extra"
        for name in names:
            if not _NAME.match(name):
                shown = name.encode("unicode_escape").decode()[:80]
                raise BadInputError(
                    f"invalid {what} name {shown!r}: use letters, digits, '-', '_' and '.', "
                    "starting and ending with a letter or digit"
                )
        return names


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
