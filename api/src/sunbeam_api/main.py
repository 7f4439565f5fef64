"""The FastAPI application (factory + lifespan) and the `sunbeam-api` server command."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from pymongo import AsyncMongoClient

from sunbeam_api.dependencies import refuse_unknown_query
from sunbeam_api.errors import install_handlers
from sunbeam_api.guard import RequestGuard
from sunbeam_api.routers import compare, health, hooks, pipelines, prewarm, refs, results, runs
from sunbeam_api.settings import Settings, get_settings
from sunbeam_api.ui import install_ui

DESCRIPTION = """Results of the Sunbeam pipeline, its runs and its per-ref pipelines.

Reads are open. Mutations need `Authorization: Bearer <SUNBEAM_API_KEY>`; the GitHub webhook is
verified by its `X-Hub-Signature-256` instead.
"""


def mongo_client(settings: Settings) -> AsyncMongoClient:
    timeout_ms = int(settings.backend_timeout_s * 1000)
    # Lazy: constructing the client does not connect, so the API starts even when Mongo is down.
    return AsyncMongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms * 10,
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.mongo = mongo_client(app.state.settings)
    try:
        yield
    finally:
        await app.state.mongo.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    # /docs and /redoc are served by install_ui with local assets (the defaults load a CDN).
    app = FastAPI(
        title="Sunbeam API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(refuse_unknown_query)],
    )
    app.state.settings = settings or get_settings()
    install_handlers(app)
    # Refuses unauthenticated and oversized requests before their body is read.
    app.add_middleware(RequestGuard, settings=app.state.settings)
    for module in (health, compare, results, runs, refs, prewarm, pipelines, hooks):
        app.include_router(module.router)
    install_ui(app)
    return app


def run() -> None:
    import uvicorn

    settings = get_settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)
