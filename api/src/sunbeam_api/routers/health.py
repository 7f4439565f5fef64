"""GET /health: 200 when MongoDB and Prefect both answer, 503 naming what is down."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from sunbeam_api.dependencies import SettingsDep, get_mongo, prefect_client
from sunbeam_api.settings import Settings

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    mongodb: str
    prefect: str
    down: list[str]


async def _mongo_ok(request: Request, settings: Settings) -> bool:
    try:
        await asyncio.wait_for(
            get_mongo(request)[settings.mongo_db].command("ping"), settings.backend_timeout_s
        )
    except Exception:
        return False
    return True


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
    mongo, prefect = await asyncio.gather(_mongo_ok(request, settings), _prefect_ok(settings))
    down = [name for name, ok in (("mongodb", mongo), ("prefect", prefect)) if not ok]
    body = Health(
        status="ok" if not down else "degraded",
        mongodb="up" if mongo else "down",
        prefect="up" if prefect else "down",
        down=down,
    )
    return JSONResponse(body.model_dump(), status_code=503 if down else 200)
