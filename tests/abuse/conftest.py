"""The abuse suite's fixtures: hostile and odd input replayed against the real stack.

Each test provisions its own provider, model, tier, user and keys (unique names) on the
session's ``system`` (tests/conftest.py) and a real local OpenAI-compatible upstream.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI
from turnout_common.testing.waiting import wait_for as poll_until

wait_for = functools.partial(poll_until, timeout=20.0, interval=0.05)


@dataclass
class Tenant:
    """One user with its keys, on a model of its own served by ``upstream``."""

    user_id: str
    model: str
    keys: list[str]
    upstream: FakeOpenAI
    router: str

    def post(self, body: dict[str, Any], key: int = 0, **headers: str) -> httpx.Response:
        h = {"Authorization": f"Bearer {self.keys[key]}", **headers}
        return httpx.post(self.router + "/v1/chat/completions", json=body, headers=h, timeout=30)

    def chat(self, text: str = "hi", key: int = 0, **extra: Any) -> httpx.Response:
        body = {"model": self.model, "messages": [{"role": "user", "content": text}], **extra}
        return self.post(body, key)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI(name="abuse-box")
    server = LocalServer(fake.app).start()
    yield fake, server.url
    server.stop()


@pytest.fixture(scope="module")
def tenant(system: Any, upstream: tuple[FakeOpenAI, str]) -> Callable[..., Tenant]:
    """``tenant(keys=2, tier={"tpm_limit": 1000}, budget="0.01", price="1000")``."""
    fake, url = upstream
    cfg, h = system.url("config") + "/api/v1", system.admin

    def make(
        keys: int = 1,
        tier: dict[str, Any] | None = None,
        budget: str | None = None,
        price: str = "1",
        key_limits: dict[str, Any] | None = None,
        provider: dict[str, Any] | None = None,
    ) -> Tenant:
        tag = uuid.uuid4().hex[:8]
        with httpx.Client(headers=h, timeout=10) as c:
            body = {"name": f"ab-{tag}", "kind": "vllm", "base_url": url + "/v1",
                    **(provider or {})}  # fmt: skip
            r = c.post(cfg + "/providers", json=body)
            assert r.status_code == 201, r.text
            model = {"provider": f"ab-{tag}", "upstream_model": "m", "name": f"ab-{tag}",
                     "purposes": ["chat"], "input_price_per_mtok": price,
                     "output_price_per_mtok": price}  # fmt: skip
            r = c.post(cfg + "/models", json=model)
            assert r.status_code == 201, r.text
            user: dict[str, Any] = {"id": f"ab-{tag}"}
            if tier is not None:
                r = c.put(cfg + f"/tiers/t-{tag}", json={"rank": 1, **tier})
                assert r.status_code in (200, 201), r.text
                user["tier"] = f"t-{tag}"
            if budget is not None:
                user["monthly_budget_usd"] = budget
            r = c.post(cfg + "/users", json=user)
            assert r.status_code == 201, r.text
            secrets = []
            for i in range(keys):
                body = {"user_id": f"ab-{tag}", "name": f"k{i}", **(key_limits or {})}
                r = c.post(cfg + "/keys", json=body)
                assert r.status_code == 201, r.text
                secrets.append(r.json()["key"])
        t = Tenant(f"ab-{tag}", f"ab-{tag}", secrets, fake, system.url("router"))

        def visible() -> bool:  # every key known to the router, the model routable
            for k in range(keys):
                r = httpx.get(
                    t.router + "/v1/models", headers={"Authorization": f"Bearer {secrets[k]}"}
                )
                if r.status_code != 200 or t.model not in {m["id"] for m in r.json()["data"]}:
                    return False
            return True

        wait_for(visible)
        return t

    return make


def usage_rows(system: Any, user_id: str) -> list[dict[str, Any]]:
    r = httpx.get(system.url("metering") + "/api/v1/usage", params={"user_id": user_id},
                  headers=system.admin, timeout=10)  # fmt: skip
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["data"]
    return rows
