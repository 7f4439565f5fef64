"""Configuration from the environment (`SUNBEAM_*`), overridable per call."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    lock_timeout: float = 1800.0
    git_retries: int = 3
    uv_retries: int = 2
    retry_backoff: float = 0.5
