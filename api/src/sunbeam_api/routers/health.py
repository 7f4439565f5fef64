"""GET /health: 200 when MongoDB and Prefect both answer, 503 naming what is down and why."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pymongo.errors import ConnectionFailure, OperationFailure

from sunbeam_api.dependencies import SettingsDep, get_mongo, prefect_client
from sunbeam_api.settings import Settings

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    mongodb: str
    prefect: str
    down: list[str]
    # Why each backend in `down` is down: one line for the operator, never a credential.
    reasons: dict[str, str] = {}


def _mongo_reason(exc: Exception, timeout_s: float) -> str:
    if isinstance(exc, OperationFailure) and exc.code == 18:
        return "authentication failed: check the user and password in MONGODB_URI"
    if isinstance(exc, OperationFailure):
        return f"refused the ping: {exc.details.get('codeName', exc.code) if exc.details else exc.code}"
    if isinstance(exc, (ConnectionFailure, TimeoutError)):
        return f"unreachable: no answer within {timeout_s:g} s"
    return f"ping failed ({type(exc).__name__})"


async def _mongo_down(request: Request, settings: Settings) -> str | None:
    """None when MongoDB answers a ping, else why not."""
    try:
        await asyncio.wait_for(
            get_mongo(request)[settings.mongo_db].command("ping"), settings.backend_timeout_s
        )
    except Exception as exc:
        return _mongo_reason(exc, settings.backend_timeout_s)
    return None


async def _prefect_ok(settings: Settings) -> bool:
    try:
        async with prefect_client(settings) as client:
            error = await asyncio.wait_for(client.api_healthcheck(), settings.backend_timeout_s)
    except Exception:
        return False
    return error is None


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "a backend is down"}},
)
async def health(request: Request, settings: SettingsDep) -> JSONResponse:
    mongo_down, prefect = await asyncio.gather(
        _mongo_down(request, settings), _prefect_ok(settings)
    )
    mongo = mongo_down is None
    down = [name for name, ok in (("mongodb", mongo), ("prefect", prefect)) if not ok]
    reasons: dict[str, str] = {} if mongo_down is None else {"mongodb": mongo_down}
    if not prefect:
        reasons["prefect"] = (
            f"no healthy answer from {settings.prefect_api_url} within "
            f"{settings.backend_timeout_s:g} s"
        )
    body = Health(
        status="ok" if not down else "degraded",
        mongodb="up" if mongo else "down",
        prefect="up" if prefect else "down",
        down=down,
        reasons=reasons,
    )
    return JSONResponse(body.model_dump(), status_code=503 if down else 200)
