"""Issue 21 item 1: a NUL in ``model`` stopped all metering.

The request was refused (404) but its record still reached the topic, PostgreSQL refused the
NUL and metering retried the whole batch forever. The router now refuses control characters
in every field that reaches a record, before any record exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .conftest import Tenant, usage_rows, wait_for


@pytest.mark.parametrize(
    ("field", "value"),
    [("model", "x\u0000"), ("model", "gpt\r\nx-evil: 1"), ("model", "a\u0085b")],
)
def test_control_characters_in_model_are_refused(
    tenant: Callable[..., Tenant], field: str, value: str
) -> None:
    t = tenant()
    r = t.post({field: value, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == field


def test_control_characters_in_kept_headers_are_refused(tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    body = {"model": t.model, "messages": [{"role": "user", "content": "hi"}]}
    r = t.post(body, **{"x-task-type": "a\tb"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == "x-task-type"


def test_invalid_utf8_is_refused(tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    raw = b'{"model": "\xff", "messages": [{"role": "user", "content": "hi"}]}'
    r = httpx.post(t.router + "/v1/chat/completions", content=raw,
                   headers={"Authorization": f"Bearer {t.keys[0]}",
                            "content-type": "application/json"})  # fmt: skip
    assert r.status_code == 400, r.text


def test_metering_goes_on_after_a_nul_request(system: Any, tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    bad = {"model": "x\u0000", "messages": [{"role": "user", "content": "hi"}]}
    assert t.post(bad).status_code == 422
    ok = t.chat()
    assert ok.status_code == 200, ok.text
    rid = ok.headers["x-request-id"]
    wait_for(lambda: rid in {row["request_id"] for row in usage_rows(system, t.user_id)})
