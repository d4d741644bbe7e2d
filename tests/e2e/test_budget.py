"""Budgets end to end: metering sees the spend, publishes a credit event, the router refuses;
raising the budget in config-api lets the user in again."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from openai import AuthenticationError, OpenAI, RateLimitError

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI
from turnout_common.testing.waiting import wait_for as poll_until

PRICE = Decimal(1000)  # USD per million tokens: each request here costs about 2 cents
BUDGET = Decimal("0.10")


# this module's deadline and poll interval
wait_for = functools.partial(poll_until, timeout=15.0, interval=0.05)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(name="budget-box")
    server = LocalServer(fake.app).start()
    fake.behaviour.api_key = server.url  # remembered here for the fixture below
    yield fake
    server.stop()


@pytest.fixture(scope="module")
def bob(system: Any, upstream: FakeOpenAI) -> OpenAI:
    cfg, h = system.url("config") + "/api/v1", system.admin
    base_url = str(upstream.behaviour.api_key) + "/v1"
    upstream.behaviour.api_key = None
    with httpx.Client(headers=h, timeout=10) as c:
        steps: list[tuple[str, dict[str, Any]]] = [
            ("/providers", {"name": "budget-box", "kind": "vllm", "base_url": base_url}),
            (
                "/models",
                {
                    "provider": "budget-box",
                    "upstream_model": "pricey",
                    "name": "budget-llama",
                    "purposes": ["chat"],
                    "input_price_per_mtok": str(PRICE),
                    "output_price_per_mtok": str(PRICE),
                },
            ),
            ("/users", {"id": "bob", "monthly_budget_usd": str(BUDGET)}),
        ]
        for path, body in steps:
            r = c.post(cfg + path, json=body)
            assert r.status_code == 201, r.text
        r = c.post(cfg + "/keys", json={"user_id": "bob", "name": "ci"})
        assert r.status_code == 201, r.text
        key = r.json()["key"]
    client = OpenAI(base_url=system.url("router") + "/v1", api_key=key, max_retries=0)

    def visible() -> bool:  # 401 until the new key's config event reaches the router
        try:
            return "budget-llama" in {m.id for m in client.models.list()}
        except AuthenticationError:
            return False

    wait_for(visible)
    return client


def credits(system: Any) -> dict[str, Any] | None:
    r = httpx.get(system.url("metering") + "/api/v1/credits/bob", headers=system.admin)
    return r.json() if r.status_code == 200 else None


def test_over_budget_is_refused_until_the_budget_is_raised(system: Any, bob: OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "spend some money please"}]
    served = 0
    refusal: RateLimitError | None = None
    deadline = time.monotonic() + 30
    while refusal is None and time.monotonic() < deadline:
        try:
            bob.chat.completions.create(model="budget-llama", messages=messages, max_tokens=10)
            served += 1
        except RateLimitError as exc:
            refusal = exc
        time.sleep(0.02)
    assert refusal is not None, f"{served} requests served, never refused"
    assert refusal.status_code == 429 and refusal.code == "insufficient_quota"
    # each request costs (prompt + completion tokens) x PRICE / 1e6 ~ 2 cents, and the router
    # reserves prompt + max_tokens at that price: it stops near the budget, never far past it
    assert 3 <= served <= 12, (served, refusal.message, credits(system))

    state = wait_for(lambda: (c := credits(system)) and c["spent_usd"] and c)
    spent = Decimal(str(state["spent_usd"]))
    per_request = spent / served
    assert Decimal(str(state["limit_usd"])) == BUDGET
    assert spent <= BUDGET + per_request  # at most one request's worth over, on one replica
    assert state["ledger_consistent"] is True

    r = httpx.patch(
        system.url("config") + "/api/v1/users/bob",
        headers=system.admin,
        json={"monthly_budget_usd": "100"},
    )
    assert r.status_code == 200, r.text

    def served_again() -> bool:
        try:
            bob.chat.completions.create(model="budget-llama", messages=messages, max_tokens=10)
        except RateLimitError:
            return False
        return True

    wait_for(served_again)
