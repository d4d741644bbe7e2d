"""Issue 21 item 1: a NUL in ``model`` stopped all metering.

The request was refused (404) but its record still reached the topic, PostgreSQL refused the
NUL and metering retried the whole batch forever. The router now refuses control characters
and unreadable bytes in every field that reaches a record (``model``, the ``user`` field,
``metadata``, the headers it keeps) with a 422 naming the param, before any record exists; a
record of a request refused for any reason (401, 404, 422, an upstream's 400) holds only
checked text; an upstream's error code is passed on only when it looks like a code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from turnout_common.topics import USAGE
from turnout_router.guards import CONTROL

from .conftest import Tenant, usage_rows, wait_for

HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "value", ["x\u0000", "gpt\r\nx-evil: 1", "a\u0085b", "a\u2028b", "evil\u202egpt"]
)
def test_control_characters_in_model_are_refused(tenant: Callable[..., Tenant], value: str) -> None:
    t = tenant()
    r = t.post({"model": value, "messages": HI})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == "model"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"user": "alice\u0000"}, "user"),
        ({"user": "alice\nbob"}, "user"),
        ({"user": 42}, "user"),
        ({"metadata": {"team": "a\u0000b"}}, "metadata"),
        ({"metadata": {"te\nam": "a"}}, "metadata"),
        ({"metadata": "not an object"}, "metadata"),
    ],
)
def test_control_characters_in_user_and_metadata_are_refused(
    tenant: Callable[..., Tenant], extra: dict[str, Any], param: str
) -> None:
    t = tenant()
    r = t.chat(**extra)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == param
    ok = t.chat(user="alice@example.com", metadata={"team": "search", "trace": "é ü"})
    assert ok.status_code == 200, ok.text


def test_control_characters_in_kept_headers_are_refused(tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    r = t.post({"model": t.model, "messages": HI}, **{"x-task-type": "a\tb"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == "x-task-type"


@pytest.mark.parametrize("name", ["x-task-type", "x-turnout-source", "x-power-level"])
@pytest.mark.parametrize("value", [b"caf\xc3\xa9", b"a\xffb"])
def test_unreadable_header_values_are_refused(
    tenant: Callable[..., Tenant], name: str, value: bytes
) -> None:
    """Non-ASCII bytes (UTF-8 or not) in a kept header: refused, not silently dropped."""
    t = tenant()
    headers = {"Authorization": f"Bearer {t.keys[0]}", name: value}
    r = httpx.post(t.router + "/v1/chat/completions", json={"model": t.model, "messages": HI},
                   headers=headers, timeout=30)  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == name


def test_invalid_utf8_is_refused(tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    raw = b'{"model": "\xff", "messages": [{"role": "user", "content": "hi"}]}'
    r = httpx.post(t.router + "/v1/chat/completions", content=raw,
                   headers={"Authorization": f"Bearer {t.keys[0]}",
                            "content-type": "application/json"})  # fmt: skip
    assert r.status_code == 400, r.text


def _records(bootstrap: str, ids: set[str], timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """The records of ``ids`` as they are on the usage topic (read from the beginning)."""

    async def read() -> dict[str, dict[str, Any]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                    fetch_max_wait_ms=50)  # fmt: skip
        await consumer.start()
        found: dict[str, dict[str, Any]] = {}
        try:
            parts = [TopicPartition(USAGE.name, p) for p in range(USAGE.partitions)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            deadline = time.monotonic() + timeout
            while set(found) != ids and time.monotonic() < deadline:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    for msg in batch:
                        assert msg.value is not None
                        rec = orjson.loads(msg.value)
                        if rec.get("request_id") in ids:
                            found[rec["request_id"]] = rec
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (k, *_texts(v))]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def test_refused_requests_put_only_checked_text_on_the_topic(
    system: Any, tenant: Callable[..., Tenant]
) -> None:
    """A record is emitted for every request, refused or not: none carries what was refused."""
    t = tenant()
    url = t.router + "/v1/chat/completions"
    body = {"model": t.model, "messages": HI}
    unknown_key = {"Authorization": "Bearer tk-wrong", "x-turnout-source": "lab\tx"}
    answers = {
        "nul model": t.post({"model": "x\u0000", "messages": HI}),
        "unknown model": t.post({"model": "no-such-model\u00e9", "messages": HI}),
        # refused before the source header was ever checked (bad key): it must not ride along
        "401 + tab in source": httpx.post(url, json=body, headers=unknown_key, timeout=30),
        "bad source": t.post(body, **{"x-turnout-source": "a b"}),
        "long task type": t.post(body, **{"x-task-type": "t" * 65}),
    }
    b = t.upstream.behaviour
    b.status = 400
    b.error_body = {"error": {"message": "no", "code": "bad\u0000code Bearer tk-echo-1234"}}
    try:
        answers["upstream code"] = t.chat()
    finally:
        b.status, b.error_body = 200, None
    expected = {"nul model": 422, "unknown model": 404, "401 + tab in source": 401,
                "bad source": 422, "long task type": 422, "upstream code": 400}  # fmt: skip
    assert {k: r.status_code for k, r in answers.items()} == expected
    upstream_error = answers["upstream code"].json()["error"]
    assert "\u0000" not in upstream_error["code"] and "Bearer" not in upstream_error["message"]

    ids = {r.headers["x-request-id"]: what for what, r in answers.items()}
    records = _records(system.env["TURNOUT_KAFKA_BOOTSTRAP"], set(ids))
    assert set(records) == set(ids)  # refused requests are recorded too
    for rid, rec in records.items():
        bad = [s for s in _texts(rec) if CONTROL.search(s)]
        assert not bad, (ids[rid], bad)
        assert rec["source"] == "api", (ids[rid], rec["source"])
        assert rec["task_type"] is None, ids[rid]


def test_metering_goes_on_after_a_nul_request(system: Any, tenant: Callable[..., Tenant]) -> None:
    t = tenant()
    bad = t.post({"model": "x\u0000", "messages": HI})
    assert bad.status_code == 422
    ok = t.chat()
    assert ok.status_code == 200, ok.text
    both = {bad.headers["x-request-id"], ok.headers["x-request-id"]}
    # the refused request is metered (as refused) like the next one: nothing was set aside
    wait_for(lambda: both <= {row["request_id"] for row in usage_rows(system, t.user_id)})
    r = httpx.get(system.url("metering") + "/api/v1/dead-letters", headers=system.admin,
                  params={"limit": 1000}, timeout=10)  # fmt: skip
    assert r.status_code == 200, r.text
    assert not any(rid in orjson.dumps(r.json()).decode() for rid in both)
