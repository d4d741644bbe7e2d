"""Health drives routing end to end: probes -> health-worker -> ``turnout.health.v1`` -> router.

A system of its own with fast probes (``TURNOUT_HEALTH_*``). One public model, ``shared``, has
a deployment on each of two fake upstreams, ``a`` and ``b``. When ``b`` goes down the
health-worker opens its circuit and publishes it; from the moment the router has applied that
event, ``b``'s own request counter does not move and clients see no errors (before it, the
router's fallback hides ``b``'s 503s). When ``b`` recovers the router uses it again.

When has the router applied a health event? Without reading its memory: a *sentinel* model
whose only deployment is on the provider in question answers 503 ``no_healthy_upstream`` —
the router's own "health says no" error — exactly when the router skips that provider. And
since ``turnout.health.v1`` has a single partition fed in commit order by the outbox relay, a
sentinel on a *marker* provider that is taken down afterwards proves the router has applied
every earlier health event too (used to show that states other than down/open are not
skipped). No timed assertions: every wait polls with a generous deadline.

By contract a half-open provider gets trial traffic again, so "no traffic while down" is
measured inside one open period: the provider's ``changed_at`` must be the same after the
measurement as before it (else the cool-down, TURNOUT_HEALTH_COOLDOWN_S, is too short for
this machine and the test says so).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp import web

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI
from turnout_common.testing.waiting import wait_for
from turnout_common.topics import HEALTH

HEALTH_ENV = {
    "TURNOUT_HEALTH_PROBE_INTERVAL_S": "0.2",
    "TURNOUT_HEALTH_PROBE_JITTER": "0.1",
    "TURNOUT_HEALTH_PROBE_TIMEOUT_S": "2",
    "TURNOUT_HEALTH_FAILURE_THRESHOLD": "2",
    "TURNOUT_HEALTH_FAILURE_WINDOW_S": "10",
    # the circuit stays open this long before a half-open trial (during which the router
    # routes to the provider again, by contract): longer than one measurement below
    "TURNOUT_HEALTH_COOLDOWN_S": "8",
    "TURNOUT_HEALTH_SLOW_MS": "400",
    "TURNOUT_HEALTH_LEADER_RETRY_S": "0.5",
}
CHAT = ("/v1/chat/completions", "/chat/completions")


@dataclass
class ProbeFailingFake(FakeOpenAI):
    """Serves chat normally but fails the health probe (``/health``, ``/v1/models``) on demand,
    so any request that still reaches it after it is reported down is the router's choice."""

    probes_fail: bool = False

    async def health(self, request: web.Request) -> web.Response:
        if self.probes_fail:
            return web.json_response({"error": {"message": "probe failure"}}, status=503)
        return await super().health(request)

    async def models(self, request: web.Request) -> web.Response:
        if self.probes_fail:
            return web.json_response({"error": {"message": "probe failure"}}, status=503)
        return await super().models(request)


@dataclass
class Upstream:
    name: str
    fake: ProbeFailingFake
    server: LocalServer
    provider_id: str = ""

    def chat_requests(self, model: str | None = None) -> int:
        """Chat requests that reached this server (failed ones included), for one model."""
        return sum(
            1
            for r in list(self.fake.requests)
            if r["path"] in CHAT and (model is None or r["body"].get("model") == model)
        )


@dataclass
class Env:
    system: Any
    ups: dict[str, Upstream]
    key: str
    http: httpx.Client

    def chat(self, model: str, content: str = "hello") -> httpx.Response:
        return self.http.post(
            self.system.url("router") + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {self.key}"},
            json={"model": model, "messages": [{"role": "user", "content": content}]},
        )

    def health(self, name: str) -> dict[str, Any] | None:
        r = self.http.get(
            self.system.url("health") + "/api/v1/health/providers", headers=self.system.admin
        )
        assert r.status_code == 200, r.text
        by_id = {p["provider_id"]: p for p in r.json()["data"]}
        return by_id.get(self.ups[name].provider_id)

    def skipped(self, name: str) -> bool:
        """True once the router refuses the sentinel of ``name`` because health says so."""
        r = self.chat(f"only-{name}")
        if r.status_code == 200:
            return False
        assert r.status_code in (502, 503), r.text
        return r.status_code == 503 and r.json()["error"]["code"] == "no_healthy_upstream"

    def served(self, name: str) -> bool:
        r = self.chat(f"only-{name}")
        return r.status_code == 200 and r.headers["x-turnout-provider"] == name


class Clients:
    """Steady client traffic to ``shared``: every request must succeed."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.by_provider: dict[str, int] = {}
        self.sent = 0

    def one(self) -> str:
        r = self.env.chat("shared", f"request {self.sent}")
        self.sent += 1
        assert r.status_code == 200, f"a client saw an error: {r.status_code} {r.text}"
        provider = r.headers["x-turnout-provider"]
        self.by_provider[provider] = self.by_provider.get(provider, 0) + 1
        return provider

    def until(self, condition: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Keep sending while waiting for ``condition`` (checked after each request)."""

        def step() -> Any:
            self.one()
            return condition()

        return wait_for(step, timeout=timeout, interval=0.02)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, Upstream]]:
    ups: dict[str, Upstream] = {}
    try:
        for name in ("a", "b", "system", "marker-1", "marker-2"):
            fake = ProbeFailingFake(name=name)
            fake.behaviour.reply = f"served by {name}"
            ups[name] = Upstream(name, fake, LocalServer(fake.app).start())
        yield ups
    finally:
        for up in ups.values():
            up.server.stop()


@pytest.fixture(scope="module")
def env(start_own_system: Any, upstreams: dict[str, Upstream]) -> Iterator[Env]:
    with start_own_system("health", HEALTH_ENV) as system:
        cfg = system.url("config") + "/api/v1"
        with httpx.Client(headers=system.admin, timeout=10) as c:

            def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
                r = c.post(cfg + path, json=body)
                assert r.status_code == 201, r.text
                return dict(r.json())

            for name, up in upstreams.items():
                up.provider_id = post(
                    "/providers",
                    {
                        "name": name,
                        "kind": "vllm",
                        "base_url": up.server.url + "/v1",
                        "is_system": name == "system",
                    },
                )["id"]
                post(
                    "/models",
                    {
                        "provider": name,
                        "upstream_model": f"sentinel-{name}",
                        "name": f"only-{name}",
                        "purposes": ["chat"],
                    },
                )
            for name in ("a", "b"):
                post(
                    "/models",
                    {
                        "provider": name,
                        "upstream_model": "shared-model",
                        "name": "shared",
                        "purposes": ["chat"],
                    },
                )
            post("/users", {"id": "hana", "tier": "enterprise"})  # 3000 rpm
            key = post("/keys", {"user_id": "hana", "name": "health-e2e"})["key"]
        e = Env(system, upstreams, key, httpx.Client(timeout=30))

        def ready() -> bool:
            for name in upstreams:
                h = e.health(name)
                if h is None or (h["status"], h["circuit"]) != ("healthy", "closed"):
                    return False
            return all(e.served(name) for name in upstreams)

        try:
            wait_for(ready, timeout=30)
            yield e
        finally:
            e.http.close()


def test_down_upstream_gets_no_traffic_until_it_recovers(env: Env) -> None:
    a, b = env.ups["a"], env.ups["b"]
    clients = Clients(env)
    # both deployments of `shared` take traffic (weighted random among equals)
    clients.until(lambda: clients.by_provider.get("a") and clients.by_provider.get("b"))

    # b goes down: every request to it (probes and chat) fails with a 503
    b.fake.behaviour.status = 503
    state = clients.until(
        lambda: (h := env.health("b")) is not None and h["status"] == "down" and h
    )
    assert state["circuit"] == "open"
    assert state["auto_disabled"] is True
    assert state["is_system"] is False
    at_visible = b.chat_requests()
    # the router applies the published event (its sentinel is refused for health reasons)
    clients.until(lambda: env.skipped("b"))
    at_skip, a_before = b.chat_requests(), a.chat_requests("shared-model")
    for _ in range(20):
        assert clients.one() == "a"
    assert env.skipped("b")
    after = env.health("b") or {}
    assert (after.get("circuit"), after.get("changed_at")) == ("open", state["changed_at"]), (
        "the cool-down ended during the measurement (the router then routes trial traffic to "
        "b by contract); raise TURNOUT_HEALTH_COOLDOWN_S"
    )
    assert b.chat_requests() == at_skip, "the router sent traffic to a provider reported down"
    assert a.chat_requests("shared-model") == a_before + 20
    assert (env.health("a") or {}).get("status") == "healthy"
    # requests between the health API showing it and the router applying it may still have
    # tried b; the router's fallback served them from a (every client request succeeded)
    assert at_skip >= at_visible

    # b comes back: a trial probe after the cool-down closes the circuit ...
    b.fake.behaviour.status = 200
    state = clients.until(
        lambda: (h := env.health("b")) is not None and h["status"] == "healthy" and h
    )
    assert (state["circuit"], state["auto_disabled"]) == ("closed", False)
    # ... and the router sends it traffic again
    clients.until(lambda: env.served("b"))
    before = b.chat_requests("shared-model")
    clients.until(lambda: b.chat_requests("shared-model") > before)


def _mark(env: Env, marker: str) -> None:
    """Take a marker provider down and wait until the router skips it: the router has then
    applied every health event published before (one partition, relayed in commit order)."""
    assert HEALTH.partitions == 1
    env.ups[marker].fake.probes_fail = True
    wait_for(lambda: (h := env.health(marker)) is not None and h["status"] == "down")
    wait_for(lambda: env.skipped(marker), timeout=30)


def test_degraded_provider_still_gets_traffic(env: Env) -> None:
    b = env.ups["b"]
    b.fake.behaviour.delay_s = 0.5  # a probe (two GETs) takes longer than ..._SLOW_MS
    try:
        state = wait_for(
            lambda: (h := env.health("b")) is not None and h["status"] == "degraded" and h
        )
        assert state["circuit"] == "closed"
        _mark(env, "marker-1")  # the router has applied b's "degraded" now ...
        assert env.served("b")  # ... and still routes to it
        before = b.chat_requests("shared-model")
        clients = Clients(env)
        clients.until(lambda: b.chat_requests("shared-model") > before)
        after = env.health("b") or {}
        assert (after.get("status"), after.get("changed_at")) == ("degraded", state["changed_at"])
    finally:
        b.fake.behaviour.delay_s = 0


def test_system_provider_is_never_skipped(env: Env) -> None:
    """SPEC §2 health-worker: "system providers are never disabled". The health-worker
    reports a down system provider with ``auto_disabled: false``; the router should keep it."""
    system_up = env.ups["system"]
    system_up.fake.probes_fail = True
    try:
        state = wait_for(
            lambda: (h := env.health("system")) is not None and h["status"] == "down" and h
        )
        assert (state["circuit"], state["is_system"], state["auto_disabled"]) == (
            "open",
            True,
            False,
        )
        _mark(env, "marker-2")
        r = env.chat("only-system")
        after = env.health("system") or {}
        assert after.get("changed_at") == state["changed_at"], "raise TURNOUT_HEALTH_COOLDOWN_S"
        assert r.status_code == 200, r.text
        assert r.headers["x-turnout-provider"] == "system"
    finally:
        system_up.fake.probes_fail = False
