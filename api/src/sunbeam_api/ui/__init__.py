"""The results browser: HTML pages with Bokeh plots, served by the API with local assets only."""

from __future__ import annotations

from fastapi import FastAPI

from sunbeam_api.ui.assets import install_assets
from sunbeam_api.ui.pages import PageError, page_error, router


def install_ui(app: FastAPI) -> None:
    install_assets(app)
    app.add_exception_handler(PageError, page_error)
    app.include_router(router)
