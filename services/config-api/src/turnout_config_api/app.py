"""Skeleton app factory (replaced by the service's own issue)."""

from __future__ import annotations

from fastapi import FastAPI

from turnout_common.web import install_error_handlers, ops_router


def create_app() -> FastAPI:
    app = FastAPI(title="turnout-config-api")
    install_error_handlers(app)
    app.include_router(ops_router({}))
    return app
