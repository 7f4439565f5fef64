"""POST /hooks/github: a push webhook that prewarms the pushed commit's environment on every host.

Authenticated by GitHub's `X-Hub-Signature-256` (HMAC SHA-256 of the raw body with the shared
secret), not by the API key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel

from sunbeam_api.dependencies import PrefectDep, SettingsDep, validate_ref
from sunbeam_api.errors import BadInputError, DisabledError, UnauthorizedError
from sunbeam_api.orchestration import prewarm

router = APIRouter(prefix="/hooks", tags=["hooks"])

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_DELETED = re.compile(r"^0+$")


class HookAnswer(BaseModel):
    event: str
    runs: list[UUID]
    # The hosts prewarmed, in the order of `runs`; empty when one run went to the shared queue.
    hosts: list[str] = []
    ignored: str | None = None
    note: str | None = None


def verify_signature(secret: str, body: bytes, signature: str | None) -> None:
    if not signature or not signature.startswith("sha256="):
        raise UnauthorizedError("missing or malformed X-Hub-Signature-256 header")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise UnauthorizedError("webhook signature does not match")


async def signed_body(
    request: Request,
    settings: SettingsDep,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
) -> bytes:
    """The raw body, once its signature matches (the guard has bounded its size already)."""
    if settings.github_webhook_secret is None:
        raise DisabledError(
            "the GitHub webhook is disabled: set SUNBEAM_GITHUB_WEBHOOK_SECRET on the API server "
            "and the same secret in the repository's webhook settings"
        )
    if not x_hub_signature_256 or not x_hub_signature_256.startswith("sha256="):
        raise UnauthorizedError("missing or malformed X-Hub-Signature-256 header")
    body = await request.body()
    verify_signature(settings.github_webhook_secret.get_secret_value(), body, x_hub_signature_256)
    return body


@router.post(
    "/github",
    response_model=HookAnswer,
    summary="GitHub push webhook: prewarm the pushed commit's environment on every live host",
    responses={401: {"description": "bad signature"}, 503: {"description": "no secret set"}},
)
async def github(
    # Declared before the Prefect client: FastAPI resolves dependencies in order, so a request
    # with a bad signature is refused before any Prefect connection is opened.
    body: Annotated[bytes, Depends(signed_body)],
    client: PrefectDep,
    x_github_event: Annotated[str | None, Header()] = None,
) -> HookAnswer:
    event = x_github_event or "unknown"
    if event == "ping":
        return HookAnswer(event=event, runs=[], ignored="ping")
    if event != "push":
        return HookAnswer(event=event, runs=[], ignored=f"event {event!r} is not handled")
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadInputError("webhook body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadInputError("webhook body is not a JSON object")
    pushed_ref, after = payload.get("ref"), payload.get("after")
    if not isinstance(pushed_ref, str) or not isinstance(after, str):
        raise BadInputError("push payload needs string fields 'ref' and 'after'")
    validate_ref(pushed_ref)
    if payload.get("deleted") is True or _DELETED.match(after):
        return HookAnswer(event=event, runs=[], ignored=f"{pushed_ref} was deleted")
    if not _SHA.match(after):
        raise BadInputError("'after' is not a hex commit SHA")
    prewarms = await prewarm.create_prewarm_runs(client, after, pushed_ref)
    return HookAnswer(
        event=event, runs=[r.id for r in prewarms.runs], hosts=prewarms.hosts, note=prewarms.note
    )
