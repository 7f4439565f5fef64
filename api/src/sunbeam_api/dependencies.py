"""FastAPI dependencies: settings, MongoDB, a Prefect client, auth and safe input types."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prefect.client.orchestration import PrefectClient
from pydantic import AfterValidator, StringConstraints
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from sunbeam_api.errors import BadInputError, DisabledError, UnauthorizedError
from sunbeam_api.refs import validate_ref
from sunbeam_api.settings import Settings


def app_settings(request: Request) -> Settings:
    """The settings the app was created with (not re-read from the environment)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


def get_mongo(request: Request) -> AsyncMongoClient:
    return request.app.state.mongo


def get_db(request: Request, settings: SettingsDep) -> AsyncDatabase:
    return get_mongo(request)[settings.mongo_db]


DbDep = Annotated[AsyncDatabase, Depends(get_db)]


def prefect_client(settings: Settings) -> PrefectClient:
    # A fresh client per use: Prefect's client retries ConnectError with backoff once it has
    # connected, which would turn "Prefect is down" into a minute-long hang instead of a 503.
    return PrefectClient(
        api=settings.prefect_api_url,
        httpx_settings={"timeout": settings.backend_timeout_s * 3},
    )


async def get_prefect(settings: SettingsDep) -> AsyncIterator[PrefectClient]:
    async with prefect_client(settings) as client:
        yield client


PrefectDep = Annotated[PrefectClient, Depends(get_prefect)]

_bearer = HTTPBearer(auto_error=False, description="SUNBEAM_API_KEY as a bearer token")


def require_api_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Mutations need `Authorization: Bearer <SUNBEAM_API_KEY>`; with no key set, none pass."""
    if settings.api_key is None:
        raise DisabledError(
            "mutating endpoints are disabled: set SUNBEAM_API_KEY on the API server to enable "
            "them, then send 'Authorization: Bearer <key>'"
        )
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise UnauthorizedError("missing 'Authorization: Bearer <key>' header", headers=challenge)
    expected = settings.api_key.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise UnauthorizedError("invalid API key", headers=challenge)


AuthDep = Depends(require_api_key)


def _no_operator(value: str) -> str:
    if value.startswith("$"):
        raise ValueError("must not start with '$'")
    return value


def _ref(value: str) -> str:
    try:
        return validate_ref(value)
    except BadInputError as exc:
        raise ValueError(exc.message) from None


# Event, stage and series names are identifiers the pipeline chose (FSGP_2025_Day_1, PackPower):
# a plain character set, so neither an operator nor a JSON document nor a path separator gets in.
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:+\- ]{0,199}$"
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=NAME_PATTERN),
    AfterValidator(_no_operator),
]
Ref = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    AfterValidator(_no_operator),
    AfterValidator(_ref),
]
