"""The API key check, shared by the route dependency and the request guard.

One function so that the guard (which runs before any body is read) and the routes (which
document the requirement in OpenAPI) can never disagree about who may mutate.
"""

from __future__ import annotations

import hmac

from pydantic import SecretStr

from sunbeam_api.errors import DisabledError, UnauthorizedError

CHALLENGE = {"WWW-Authenticate": "Bearer"}


def check_api_key(api_key: SecretStr | None, authorization: str | None) -> None:
    """Pass for `Authorization: Bearer <SUNBEAM_API_KEY>`; with no key set, nothing passes."""
    if api_key is None:
        raise DisabledError(
            "mutating endpoints are disabled: set SUNBEAM_API_KEY on the API server to enable "
            "them, then send 'Authorization: Bearer <key>'"
        )
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("missing 'Authorization: Bearer <key>' header", headers=CHALLENGE)
    expected = api_key.get_secret_value().encode()
    if not hmac.compare_digest(token.strip().encode(), expected):
        raise UnauthorizedError("invalid API key", headers=CHALLENGE)
