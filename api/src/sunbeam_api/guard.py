"""The request guard: refuse a request from its headers, before a byte of its body is read.

FastAPI reads and parses a JSON body before it runs a route's dependencies, so an API-key check
in a dependency comes after a 100 MB body is already in memory. This ASGI middleware runs first:
routes that need the API key get 401 without it (503 when no key is configured) from the headers alone;
a declared `Content-Length` over the limit gets 413 at once, and a body streamed without a length
is counted as it arrives and cut off with 413 as soon as it passes the limit.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sunbeam_api.auth import check_api_key
from sunbeam_api.dependencies import require_api_key
from sunbeam_api.errors import SunbeamApiError
from sunbeam_api.settings import Settings

# Webhooks are authenticated by their signature (POST /hooks/github) and may be larger.
SIGNED_PREFIX = "/hooks/"
WEBHOOK_MAX_BODY = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB


def _too_large(limit: int) -> str:
    return (
        f"request body larger than {limit} bytes; send less (the limit is SUNBEAM_MAX_BODY_BYTES)"
    )


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: Settings, router: Router) -> None:
        self.app = app
        self.settings = settings
        self.router = router
        self._keyed: list[BaseRoute] | None = None

    def needs_key(self, scope: Scope) -> bool:
        """True when the request goes to a route that depends on the API key check."""
        if self._keyed is None:  # routes are complete once the app serves its first request
            self._keyed = [
                route
                for route in self.router.routes
                if any(d.dependency is require_api_key for d in getattr(route, "dependencies", ()))
            ]
        return any(route.matches(scope)[0] is Match.FULL for route in self._keyed)

    def body_limit(self, path: str) -> int:
        return WEBHOOK_MAX_BODY if path.startswith(SIGNED_PREFIX) else self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.body_limit(path)
        try:
            if self.needs_key(scope):
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
