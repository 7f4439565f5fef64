"""FastAPI dependencies: settings, MongoDB, a Prefect client, auth and safe input types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
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


_QUERY_NAMES: dict[int, frozenset[str]] = {}


def unknown_query_parameters(request: Request) -> tuple[list[str], frozenset[str]]:
    """The request's query parameters its route does not declare, and the ones it does."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return [], frozenset()
    known = _QUERY_NAMES.get(id(route))
    if known is None:
        known = _QUERY_NAMES[id(route)] = frozenset(_query_names(route.dependant))
    return sorted(set(request.query_params) - known), known


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters an endpoint and all its dependencies declare."""
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def refuse_unknown_query(request: Request) -> None:
    """A query parameter the endpoint does not take is refused (422), never silently ignored:
    `?prewarm=true` on an endpoint without it must not look as if it had worked. (The pages
    refuse theirs with a page of their own.)"""
    route = request.scope.get("route")
    if isinstance(route, APIRoute) and not route.include_in_schema:
        return
    unknown, known = unknown_query_parameters(request)
    if unknown:
        takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
        raise BadInputError(f"unknown query parameter {unknown[0][:60]!r}: {takes}")


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
# A commit SHA, full or abbreviated, lower-cased.
Commit = Annotated[
    str,
    StringConstraints(min_length=7, max_length=40, pattern=r"^[0-9a-fA-F]{7,40}$"),
    AfterValidator(str.lower),
]
