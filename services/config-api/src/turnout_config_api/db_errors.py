"""Database errors that are the caller's fault become 4xx (never a 500 for bad input).

Validation catches almost everything first; these handlers cover what only PostgreSQL can
judge (a NUL byte in text or JSON, a unique key taken by a concurrent request).
"""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI, Request, Response

from turnout_common.errors import Conflict, ValidationFailed
from turnout_common.web import error_response


def install_db_error_handlers(app: FastAPI) -> None:
    async def on_data(_: Request, exc: Exception) -> Response:
        message = exc.args[0] if exc.args else "invalid value"
        return error_response(ValidationFailed(f"invalid value: {message}"))

    async def on_integrity(_: Request, exc: Exception) -> Response:
        detail = getattr(exc, "detail", None) or "the change conflicts with existing data"
        return error_response(Conflict(f"conflict: {detail}; reload and retry"))

    app.add_exception_handler(asyncpg.exceptions.DataError, on_data)
    app.add_exception_handler(asyncpg.exceptions.IntegrityConstraintViolationError, on_integrity)
