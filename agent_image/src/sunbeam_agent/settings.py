"""The container entrypoint's settings, from the environment (`SUNBEAM_*`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sunbeam_contracts.hosts import host_id_problem
from sunbeam_sync import default_cache_dir


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUNBEAM_", extra="ignore")

    work_pool: str = Field(default="sunbeam", min_length=1)
    # The pool's shared queues this agent polls; empty: the pool's `default` queue. The agent
    # also polls its host's own queue (host-<host id>), where the push webhook puts its prewarms.
    work_queues: list[str] = Field(default_factory=list)
    # The host, for prewarming: one per cache folder. Unset: the id recorded in the cache folder
    # (host_identity.py), so agents sharing a cache share it.
    host_id: str | None = None
    # The cache the agent's runs use by default; the host id is recorded there.
    cache_dir: Path = Field(default_factory=default_cache_dir)
    # The worker's name before `@<host id>`; None: `sunbeam-<8 hex>`, new at every start.
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

    @field_validator("host_id", mode="before")
    @classmethod
    def _valid_host_id(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None  # `SUNBEAM_HOST_ID=` in a compose file means "not set"
        if isinstance(value, str) and (problem := host_id_problem(value)):
            raise ValueError(f"{value[:80]!r} cannot name a host queue: {problem}")
        return value
