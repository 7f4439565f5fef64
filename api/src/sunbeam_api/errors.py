"""Sunbeam API errors and the handlers that turn every failure into a clear JSON answer.

No traceback ever reaches a client: our own errors carry their status and message, a backend that
does not answer becomes 503 naming it, and anything unexpected becomes a terse 500.
"""

from __future__ import annotations

import logging

import httpx
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from pymongo.errors import ConnectionFailure, PyMongoError, ServerSelectionTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("sunbeam_api")
FASTAPI_PARSE_ERROR = "There was an error parsing the body"


class SunbeamApiError(Exception):
    """Base of our errors: a message meant for the caller and the HTTP status that goes with it."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class BadInputError(SunbeamApiError):
    status_code = 422


class NotFoundError(SunbeamApiError):
    status_code = status.HTTP_404_NOT_FOUND


class ConflictError(SunbeamApiError):
    status_code = status.HTTP_409_CONFLICT


class UnauthorizedError(SunbeamApiError):
    status_code = status.HTTP_401_UNAUTHORIZED


class DisabledError(SunbeamApiError):
    """A feature that stays off until the operator configures it (API key, webhook secret…)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


class BackendUnavailableError(SunbeamApiError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


def _error(status_code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status_code, headers=headers)


async def _sunbeam_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SunbeamApiError)
    return _error(exc.status_code, exc.message, exc.headers)


async def _mongo_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("MongoDB unavailable: %s", type(exc).__name__)
    return _error(503, "MongoDB is unavailable; try again when it is back")


async def _mongo_error(_: Request, exc: Exception) -> JSONResponse:
    log.error("MongoDB error: %s", exc)
    return _error(503, "MongoDB could not answer the query")


async def _prefect_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("Prefect unavailable: %s", type(exc).__name__)
    return _error(503, "Prefect is unavailable; try again when it is back")


async def _prefect_not_found(_: Request, exc: Exception) -> JSONResponse:
    return _error(404, "not found in Prefect")


async def _prefect_status(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, httpx.HTTPStatusError)
    code = exc.response.status_code
    log.warning("Prefect answered %s for %s", code, exc.request.url.path)
    if code >= 500:
        return _error(503, f"Prefect answered {code}; try again later")
    if code in (409, 422):
        # The caller's request conflicts with Prefect's state or schema: pass Prefect's reason on.
        detail = _prefect_detail(exc.response)
        if "Validation failed" in detail:
            code = 422  # Prefect answers 409 when parameters break the deployment's schema
        return _error(code, f"Prefect refused the request: {detail}")
    return _error(502, f"Prefect refused the request ({code})")


def _prefect_detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail)[:300] if detail else "no reason given"


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return JSONResponse(
        {"detail": "; ".join(problems) or "invalid request", "errors": _plain(exc.errors())},
        status_code=422,
    )


def _plain(errors: object) -> object:
    # Validation errors may carry the offending input or exception objects; keep JSON-safe parts.
    if isinstance(errors, list | tuple):
        return [
            {k: v for k, v in e.items() if k in {"loc", "msg", "type"}}
            for e in errors
            if isinstance(e, dict)
        ]
    return []


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = str(exc.detail)
    if exc.status_code == 400 and exc.__cause__ is not None and detail == FASTAPI_PARSE_ERROR:
        # FastAPI hides why (nesting too deep, a 5,000-digit number, bytes that are not UTF-8).
        cause = str(exc.__cause__).splitlines()[0][:120] if str(exc.__cause__) else ""
        detail = f"the request body is not valid JSON: {type(exc.__cause__).__name__} {cause}"
    return _error(exc.status_code, detail.strip(), getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _error(500, "internal error; the server log has the details")


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SunbeamApiError, _sunbeam_error)
    app.add_exception_handler(ServerSelectionTimeoutError, _mongo_down)
    app.add_exception_handler(ConnectionFailure, _mongo_down)
    app.add_exception_handler(PyMongoError, _mongo_error)
    app.add_exception_handler(ObjectNotFound, _prefect_not_found)
    app.add_exception_handler(PrefectHTTPStatusError, _prefect_status)
    app.add_exception_handler(httpx.HTTPStatusError, _prefect_status)
    # Prefect is the only HTTP backend: a transport failure means it is down or unreachable.
    app.add_exception_handler(httpx.TransportError, _prefect_down)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
