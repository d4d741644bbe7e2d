import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from turnout_common.errors import (
    AuthenticationFailed,
    InsufficientQuota,
    NotFound,
    RateLimited,
    TurnoutError,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamTimeout,
)
from turnout_common.web import install_error_handlers


@pytest.mark.parametrize(
    ("exc", "status", "etype", "code"),
    [
        (AuthenticationFailed("bad key"), 401, "authentication_error", "invalid_api_key"),
        (
            NotFound("no model", code="model_not_found"),
            404,
            "invalid_request_error",
            "model_not_found",
        ),
        (InsufficientQuota("no budget"), 429, "insufficient_quota", "insufficient_quota"),
        (UpstreamTimeout("slow"), 504, "timeout_error", "upstream_timeout"),
        (UpstreamAuthFailed("key refused"), 502, "upstream_error", "upstream_auth_failed"),
    ],
)
def test_openai_error_shape(exc: TurnoutError, status: int, etype: str, code: str) -> None:
    assert exc.status == status
    body = exc.to_dict()
    assert body == {"error": {"message": exc.message, "type": etype, "param": None, "code": code}}


def test_upstream_auth_failure_is_an_upstream_error_not_the_callers() -> None:
    err = UpstreamAuthFailed("openai upstream: invalid api key", code="upstream_permission_denied")
    assert isinstance(err, UpstreamError) and not isinstance(err, AuthenticationFailed)
    assert err.to_dict()["error"]["code"] == "upstream_permission_denied"


def test_rate_limited_sets_retry_after() -> None:
    assert RateLimited("slow down", retry_after=2.4).headers["retry-after"] == "2"


class Item(BaseModel):
    price: float


def test_fastapi_rendering_of_errors_and_validation() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RateLimited("too many", retry_after=3)

    @app.post("/items")
    async def items(item: Item) -> Item:
        return item

    client = TestClient(app)
    resp = client.get("/boom")
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "3"
    assert resp.json()["error"]["code"] == "rate_limit_exceeded"
    resp = client.post("/items", json={"price": "cheap"})
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["param"] == "price" and "price" in err["message"]
    assert client.get("/nope").json()["error"]["type"] == "invalid_request_error"
