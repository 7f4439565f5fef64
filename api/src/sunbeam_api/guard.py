"""The request guard: refuse a request from its headers, before a byte of its body is read.

FastAPI reads and parses a JSON body before it runs a route's dependencies, so an API-key check
in a dependency comes after a 100 MB body is already in memory. This ASGI middleware runs first:
mutations without the right key get 401 (503 when no key is configured) from the headers alone;
a declared `Content-Length` over the limit gets 413 at once, and a body streamed without a length
is counted as it arrives and cut off with 413 as soon as it passes the limit.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sunbeam_api.auth import check_api_key
from sunbeam_api.errors import SunbeamApiError
from sunbeam_api.settings import Settings

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Authenticated by their own signature instead of the API key (POST /hooks/github).
SIGNED_PREFIX = "/hooks/"
WEBHOOK_MAX_BODY = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB


def _too_large(limit: int) -> str:
    return (
        f"request body larger than {limit} bytes; send less (the limit is SUNBEAM_MAX_BODY_BYTES)"
    )


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def body_limit(self, path: str) -> int:
        return WEBHOOK_MAX_BODY if path.startswith(SIGNED_PREFIX) else self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "GET")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.body_limit(path)
        try:
            if method not in READ_METHODS and not path.startswith(SIGNED_PREFIX):
                check_api_key(self.settings.api_key, headers.get("authorization"))
            _check_length(headers.get("content-length"), limit)
        except SunbeamApiError as exc:
            answer = JSONResponse({"detail": exc.message}, exc.status_code, exc.headers)
            await answer(scope, receive, send)
            return
        await self.app(scope, _counting(receive, limit), send)


def _check_length(declared: str | None, limit: int) -> None:
    # The HTTP server (h11) has already refused a Content-Length that is not a number.
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _TooLarge(_too_large(limit))


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                # Raised inside the app: FastAPI passes HTTPException on from body reading,
                # and the app's handler answers it as JSON.
                raise HTTPException(413, _too_large(limit))
        return message

    return counted


class _TooLarge(SunbeamApiError):
    status_code = 413
