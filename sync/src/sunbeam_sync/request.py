"""What a caller asks `prepare` for, validated on construction (BadInputError, before git runs)."""

from __future__ import annotations

from pathlib import PurePosixPath

from pydantic import BaseModel, Field, field_validator

from sunbeam_sync.errors import BadInputError
from sunbeam_sync.refs import validate_ref, validate_repo


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
        return validate_repo(value)

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
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
                raise BadInputError(f"invalid group or extra name {name!r}")
        return names


def validate_project_dir(project_dir: object) -> str:
    if not isinstance(project_dir, str) or any(ord(c) < 32 for c in project_dir):
        raise BadInputError("invalid project folder")
    path = PurePosixPath(project_dir or ".")
    if path.is_absolute() or ".." in path.parts or project_dir.startswith("-"):
        raise BadInputError(
            f"project folder {project_dir!r} must be a relative path inside the repository"
        )
    return str(path)
