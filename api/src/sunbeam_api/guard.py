"""The request guard: check the key and the declared size before a byte of the body is read.

FastAPI reads and parses a JSON body before it runs a route's dependencies, so an API-key check
in a dependency comes after a 100 MB body is already in memory. This ASGI middleware hooks the
body's first read, which happens after routing and before anything is consumed: a route that
needs the API key gets 401 (503 when no key is configured) from the headers alone; a declared
`Content-Length` over the limit gets 413 at once, and a body streamed without a length is
counted as it arrives and cut off with 413 as soon as it passes the limit.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sunbeam_api.auth import check_api_key
from sunbeam_api.dependencies import require_api_key
from sunbeam_api.errors import SunbeamApiError
from sunbeam_api.settings import Settings

# Webhooks are authenticated by their signature (POST /hooks/github) and may be larger.
SIGNED_PREFIX = "/hooks/"
WEBHOOK_MAX_BODY = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            receive = _GuardedBody(scope, receive, self.settings)
        await self.app(scope, receive, send)


def _needs_key(scope: Scope) -> bool:
    # Starlette's router puts the matched route in the scope before the endpoint reads a body.
    route = scope.get("route")
    return any(d.dependency is require_api_key for d in getattr(route, "dependencies", ()))


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


class _GuardedBody:
    """The app's `receive`, refusing the request on its first call and counting bytes after."""

    def __init__(self, scope: Scope, receive: Receive, settings: Settings) -> None:
        self.scope, self.receive, self.settings = scope, receive, settings
        self.signed = scope.get("path", "").startswith(SIGNED_PREFIX)
        self.limit = WEBHOOK_MAX_BODY if self.signed else settings.max_body_bytes
        self.seen: int | None = None  # None until the first read

    async def __call__(self) -> Message:
        if self.seen is None:
            self._check_headers()
            self.seen = 0
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                raise self._too_large()
        return message

    def _check_headers(self) -> None:
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.scope["headers"]
        }
        if _needs_key(self.scope):
            try:
                check_api_key(self.settings.api_key, headers.get("authorization"))
            except SunbeamApiError as exc:
                # HTTPException: FastAPI passes it on from body reading; the app answers it as JSON.
                raise HTTPException(exc.status_code, exc.message, exc.headers) from None
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        has_body = (
            headers.get("content-length", "0").strip() != "0" or "transfer-encoding" in headers
        )
        if not self.signed and has_body and not _is_json(media_type):
            shown = repr(media_type[:60]) if media_type else "no Content-Type"
            raise HTTPException(
                415, f"send the body as JSON (Content-Type: application/json), not {shown}"
            )
        declared = headers.get("content-length", "")
        # The HTTP server (h11) has already refused a Content-Length that is not a number.
        if declared.strip().isdigit() and int(declared) > self.limit:
            raise self._too_large()

    def _too_large(self) -> HTTPException:
        where = (
            "GitHub's webhook limit" if self.limit == WEBHOOK_MAX_BODY else "SUNBEAM_MAX_BODY_BYTES"
        )
        return HTTPException(
            413, f"request body larger than {self.limit} bytes ({where}); send less"
        )
