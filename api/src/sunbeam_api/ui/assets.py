"""Everything a page loads comes from installed Python packages, served by the API itself.

BokehJS ships inside the `bokeh` package; Swagger UI and ReDoc inside `fastapi-offline`. So the
results browser, `/docs` and `/redoc` work with every address but 127.0.0.1 unreachable.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import fastapi_offline
from bokeh.resources import Resources
from bokeh.util.paths import static_path
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

BOKEH_ROOT = "/ui/bokeh/"
DOCS_ASSETS = "/ui/assets/docs"
DOCS_DIR = Path(fastapi_offline.__file__).parent / "static"
REDOC_JS = "/ui/assets/redoc.standalone.js"
# ReDoc's menu footer loads its logo from a CDN, with no option to turn it off: the one remote URL
# in the bundle is pointed at our own favicon instead.
REDOC_REMOTE_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@lru_cache(maxsize=1)
def redoc_script() -> bytes:
    text = (DOCS_DIR / "redoc.standalone.js").read_text(encoding="utf-8")
    return text.replace(REDOC_REMOTE_LOGO, f"{DOCS_ASSETS}/favicon.png").encode()


def bokeh_js() -> str:
    """The script tags for BokehJS, pointing at our own static path."""
    return Resources(mode="server", root_url=BOKEH_ROOT, components=["bokeh"]).render_js()


def install_assets(app: FastAPI) -> None:
    app.mount(f"{BOKEH_ROOT}static", StaticFiles(directory=static_path()), name="bokehjs")
    app.mount(DOCS_ASSETS, StaticFiles(directory=DOCS_DIR), name="docs-assets")
    title = app.title
    openapi_url = app.openapi_url or "/openapi.json"
    redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            oauth2_redirect_url=redirect,
            # No online validator badge: it would call out to the internet.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(redirect, include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_JS, include_in_schema=False)
    async def redoc_js() -> Response:
        return Response(
            redoc_script(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=REDOC_JS,
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
