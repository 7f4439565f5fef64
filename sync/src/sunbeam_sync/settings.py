"""Configuration from the environment (`SUNBEAM_*`), overridable per call."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from sunbeam_sync.errors import BadInputError


class LinkMode(StrEnum):
    # auto: reflink ("clone") where the cache's filesystem supports it, else hardlink + read-only files.
    AUTO = "auto"
    CLONE = "clone"
    HARDLINK = "hardlink"
    COPY = "copy"


class Bytecode(StrEnum):
    BACKGROUND = "background"  # publish first, compile .pyc in a detached process
    BUILD = "build"  # compile before publishing (slow builds, fast first start)
    OFF = "off"


def default_cache_dir() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sunbeam"


class SyncSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUNBEAM_", extra="ignore", validate_assignment=True
    )

    cache_dir: Path = Field(default_factory=default_cache_dir)
    python: str | None = None
    git_token: SecretStr | None = None
    git_username: str = "x-access-token"
    link_mode: LinkMode = LinkMode.AUTO
    bytecode: Bytecode = Bytecode.BACKGROUND
    lock_timeout: float = Field(default=1800.0, ge=0)
    git_retries: int = 3
    uv_retries: int = 2
    retry_backoff: float = Field(default=0.5, ge=0)
    # Lock sources that are neither a package index nor inside the repository (a wheel or folder
    # elsewhere on this machine, a file:// git repository) are refused unless this is set.
    allow_external_sources: bool = False

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise BadInputError(_explain(exc)) from None


def _explain(exc: ValidationError) -> str:
    """One line naming the setting, the value given and what it accepts."""
    parts = []
    for error in exc.errors()[:3]:
        field = str(error["loc"][0]) if error["loc"] else "?"
        given = "***" if "token" in field else str(error.get("input"))[:60]
        parts.append(f"SUNBEAM_{field.upper()}={given!r} is not valid: {error['msg']}")
    return "; ".join(parts)
