"""The container entrypoint's settings, from the environment (`SUNBEAM_*`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUNBEAM_", extra="ignore")

    work_pool: str = Field(default="sunbeam", min_length=1)
    work_queues: list[str] = Field(default_factory=list)
    worker_name: str | None = None
    # Flow runs one worker runs at once; None: no limit.
    worker_limit: int | None = Field(default=None, ge=1)
    # How long to wait for the Prefect API at start-up before giving up.
    api_wait_timeout: float = Field(default=180.0, gt=0)
    # Replace an existing pool's base job template with this version's default.
    overwrite_pool: bool = False
    # On SIGTERM: how long running flows get to finish before the worker is stopped hard.
    stop_timeout: float = Field(default=60.0, ge=0)
    healthcheck: bool = True
