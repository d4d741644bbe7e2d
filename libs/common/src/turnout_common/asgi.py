"""ASGI middleware shared by the JSON APIs (config-api, metering, health-worker): request ids,
control characters refused in URLs (422: they would reach the database), and JSON bodies sent
without a JSON content type.

``curl -d '{...}'`` (the SPEC §5 walkthrough) sends ``application/x-www-form-urlencoded``;
these APIs only accept JSON bodies, so such a body is read as JSON (invalid JSON still 422s).
Add it after ``install_http_metrics`` (outermost), since it copies the scope.
"""

from __future__ import annotations

import uuid
from urllib.parse import unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from turnout_common.errors import ValidationFailed

_JSON = b"application/json"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _has_control(scope: Scope) -> bool:
    """A control character (NUL, CR, LF, ...) in the path or the query string's values."""
    path: str = scope.get("path", "")
    if any(ch < " " or ch == "\x7f" for ch in path):
        return True
    raw = unquote_to_bytes(scope.get("query_string", b""))
    return any(b < 0x20 or b == 0x7F for b in raw)


async def _refuse(send: Send) -> None:
    err = ValidationFailed(
        "the URL holds a control character (e.g. %00): no identifier or filter contains one"
    )
    body = orjson.dumps(err.to_dict())
    await send({"type": "http.response.start", "status": err.status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class ApiMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _has_control(scope):
            await _refuse(send)
            return
        headers = list(scope["headers"])
        rid = next((v for k, v in headers if k == b"x-request-id"), b"")[:128]
        if not rid:
            rid = uuid.uuid4().hex.encode()
            headers.append((b"x-request-id", rid))
        if scope["method"] in _BODY_METHODS:
            ctype = next((v for k, v in headers if k == b"content-type"), b"")
            if not ctype.startswith(_JSON) and b"multipart" not in ctype:
                headers = [(k, v) for k, v in headers if k != b"content-type"]
                headers.append((b"content-type", _JSON))
        state = {**scope.get("state", {}), "request_id": rid.decode("latin-1")}
        scope = {**scope, "headers": headers, "state": state}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid)]
            await send(message)

        await self.app(scope, receive, send_with_id)
