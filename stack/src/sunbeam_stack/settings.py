"""What the `sunbeam` command reads from the environment, in one object (the rest are options)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    work_pool: str = Field(
        "sunbeam", min_length=1, alias="SUNBEAM_WORK_POOL", description="the agent's work pool"
    )
    api_key: SecretStr | None = Field(
        None,
        alias="SUNBEAM_API_KEY",
        description="the API's key; unset: `sunbeam up` makes one in its state folder",
    )
    api_url: str | None = Field(
        None,
        alias="SUNBEAM_API_URL",
        description="the API `sunbeam prewarm` asks; unset: the `sunbeam up` stack's",
    )
    mongodb_uri: str | None = Field(
        None,
        alias="MONGODB_URI",
        description="a MongoDB server to use; unset: `sunbeam up` starts an embedded one",
    )

    @field_validator("api_key", "api_url", "mongodb_uri", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
