"""API settings, read from the environment (never from code)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob the API has; each field names the environment variable it comes from."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    mongodb_uri: str = Field(
        "mongodb://127.0.0.1:27017/", validation_alias=AliasChoices("MONGODB_URI", "mongodb_uri")
    )
    mongo_db: str = Field("sunbeam", validation_alias=AliasChoices("SUNBEAM_MONGO_DB", "mongo_db"))
    prefect_api_url: str = Field(
        "http://127.0.0.1:4200/api",
        validation_alias=AliasChoices("PREFECT_API_URL", "prefect_api_url"),
    )
    api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SUNBEAM_API_KEY", "api_key")
    )
    work_pool: str = Field(
        "sunbeam", validation_alias=AliasChoices("SUNBEAM_WORK_POOL", "work_pool")
    )
    pipeline_repo: str | None = Field(
        None, validation_alias=AliasChoices("SUNBEAM_PIPELINE_REPO", "pipeline_repo")
    )
    github_webhook_secret: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SUNBEAM_GITHUB_WEBHOOK_SECRET", "github_webhook_secret"),
    )
    host: str = Field("127.0.0.1", validation_alias=AliasChoices("SUNBEAM_API_HOST", "host"))
    port: int = Field(8080, validation_alias=AliasChoices("SUNBEAM_API_PORT", "port"))
    # Short, so /health and the 503 answers come back quickly when a backend is down.
    backend_timeout_s: float = Field(
        3.0, validation_alias=AliasChoices("SUNBEAM_BACKEND_TIMEOUT", "backend_timeout_s")
    )

    # Request bodies are small JSON documents (a ref and a few parameters); the webhook has its own
    # limit (GitHub's 25 MB). Anything larger is refused with 413 before it is read.
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        validation_alias=AliasChoices("SUNBEAM_MAX_BODY_BYTES", "max_body_bytes"),
    )

    @field_validator("api_key", "github_webhook_secret", "pipeline_repo", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `SUNBEAM_API_KEY=` in a compose file means "not configured", not "the empty key".
        return None if isinstance(value, str) and not value.strip() else value


@lru_cache
def get_settings() -> Settings:
    return Settings()
