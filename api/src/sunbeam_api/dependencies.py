"""FastAPI dependencies: settings, MongoDB, a Prefect client, auth and safe input types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prefect.client.orchestration import PrefectClient
from pydantic import AfterValidator, StringConstraints
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from sunbeam_api.auth import check_api_key
from sunbeam_api.errors import BadInputError
from sunbeam_api.orchestration import busy as prefect_busy
from sunbeam_api.settings import Settings
from sunbeam_contracts import ref_rules


def validate_ref(ref: object) -> str:
    """A valid git ref name or hex SHA (SHAs lower-cased); BadInputError (422) otherwise.

    The rules are sunbeam_contracts' (shared with the sync core): the agent accepts what the API
    accepts."""
    try:
        return ref_rules.validate_ref(ref)
    except ref_rules.InvalidRef as exc:
        raise BadInputError(str(exc)) from None


def app_settings(request: Request) -> Settings:
    """The settings the app was created with (not re-read from the environment)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


def get_mongo(request: Request) -> AsyncMongoClient:
    return request.app.state.mongo


def get_db(request: Request, settings: SettingsDep) -> AsyncDatabase:
    return get_mongo(request)[settings.mongo_db]


DbDep = Annotated[AsyncDatabase, Depends(get_db)]


def prefect_client(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> PrefectClient:
    # A fresh client per use: Prefect's client retries ConnectError with backoff once it has
    # connected, which would turn "Prefect is down" into a minute-long hang instead of a 503.
    # The hook lets `prefect_busy.retried_when_busy` retry a busy Prefect at once. `transport`:
    # for tests.
    httpx_settings: dict[str, object] = {
        "timeout": settings.backend_timeout_s * 3,
        "event_hooks": prefect_busy.EVENT_HOOKS,
    }
    if transport is not None:
        httpx_settings["transport"] = transport
    return PrefectClient(api=settings.prefect_api_url, httpx_settings=httpx_settings)


async def get_prefect(settings: SettingsDep) -> AsyncIterator[PrefectClient]:
    async with prefect_client(settings) as client:
        yield client


PrefectDep = Annotated[PrefectClient, Depends(get_prefect)]

_bearer = HTTPBearer(auto_error=False, description="SUNBEAM_API_KEY as a bearer token")


def require_api_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Mutations need `Authorization: Bearer <SUNBEAM_API_KEY>` (the guard checked it already)."""
    header = f"{credentials.scheme} {credentials.credentials}" if credentials else None
    check_api_key(settings.api_key, header)


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
