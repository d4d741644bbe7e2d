"""API reference pages served by each admin-plane service, with no CDN.

``/docs`` (Swagger UI, with an Authorize button for the bearer token), ``/redoc`` and
``/openapi.json``. The Swagger UI and ReDoc bundles are vendored under ``static/apidocs``
(swagger-ui-dist 5.35.0, Apache-2.0; redoc 2.5.4, MIT; licences beside them), so the pages
work offline. The OpenAPI document describes the API's shape only; every operation it lists
still needs its token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static" / "apidocs"
SWAGGER_UI_VERSION = "5.35.0"
REDOC_VERSION = "2.5.4"
_NO_ICON = "data:,"

BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "an admin token (TURNOUT_ADMIN_TOKEN, or one minted by config-api) or, "
    "for a user's own data, a virtual key",
}


def install_api_docs(app: FastAPI, description: str) -> None:
    """Serve ``/docs``, ``/redoc`` and ``/openapi.json`` from local assets.

    Create the app with ``docs_url=None, redoc_url=None, openapi_url=None``."""
    app.description = description
    app.mount("/docs/assets", StaticFiles(directory=ASSETS), name="apidocs-assets")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=description, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = BEARER
            schema["security"] = [{"bearer": []}]
            for ops in schema.get("paths", {}).values():
                for op in ops.values():
                    if isinstance(op, dict) and not op.get("description"):
                        op["description"] = op.get("summary", "")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json() -> dict[str, Any]:
        return openapi()

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — API reference",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url=_NO_ICON,
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — API reference",
            redoc_js_url="/docs/assets/redoc.standalone.js",
            redoc_favicon_url=_NO_ICON,
            with_google_fonts=False,
        )
