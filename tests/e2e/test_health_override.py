"""Issue 16 item 6 end to end: an admin forces a healthy provider down on the health-worker; the
router, following ``turnout.health.v1``, stops sending it requests (its fallback serves, no
failed attempt) until the override is cleared. The override log names who did it and why."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI
from turnout_common.testing.waiting import wait_for


def test_forced_down_provider_is_skipped_until_cleared(system: Any) -> None:
    fake_a, fake_b = FakeOpenAI(name="ov-a"), FakeOpenAI(name="ov-b")
    srv_a, srv_b = LocalServer(fake_a.app).start(), LocalServer(fake_b.app).start()
    tag = uuid.uuid4().hex[:6]
    cfg, health, router = system.url("config"), system.url("health"), system.url("router")
    admin = system.admin
    try:
        with httpx.Client(base_url=cfg + "/api/v1", headers=admin, timeout=10) as c:
            a, b = f"ova-{tag}", f"ovb-{tag}"
            for path, body in (
                ("/providers", {"name": a, "kind": "vllm", "base_url": srv_a.url + "/v1"}),
                ("/providers", {"name": b, "kind": "vllm", "base_url": srv_b.url + "/v1"}),
                ("/models", {"provider": b, "upstream_model": "m", "name": b}),
                ("/models", {"provider": a, "upstream_model": "m", "name": a, "fallbacks": [b]}),
                ("/users", {"id": f"ov-{tag}"}),
            ):  # fmt: skip
                r = c.post(path, json=body)
                assert r.status_code == 201, r.text
            provider_a = c.get(f"/providers/ova-{tag}").json()["id"]
            key = c.post("/keys", json={"user_id": f"ov-{tag}"}).json()["key"]
        auth = {"Authorization": f"Bearer {key}"}
        body = {"model": f"ova-{tag}", "messages": [{"role": "user", "content": "hi"}]}

        def served_by(name: str) -> httpx.Response | None:
            r = httpx.post(router + "/v1/chat/completions", json=body, headers=auth, timeout=10)
            ok = r.status_code == 200 and r.headers["x-turnout-provider"] == name
            return r if ok else None

        wait_for(lambda: served_by(f"ova-{tag}"), timeout=30)

        url = f"{health}/api/v1/health/providers/{provider_a}/override"
        force = {"status": "down", "reason": f"maintenance {tag}"}

        def forced() -> httpx.Response | None:  # the health-worker knows the provider by now
            r = httpx.put(url, json=force, headers=admin, timeout=10)
            return r if r.status_code == 200 else None

        assert wait_for(forced, timeout=30).json()["actor"] == "bootstrap"
        wait_for(lambda: served_by(f"ovb-{tag}"), timeout=30)
        before = len(fake_a.requests)
        for _ in range(5):
            r = served_by(f"ovb-{tag}")
            assert r is not None and r.headers["x-turnout-fallbacks"] == "0"  # skipped, not tried
        assert len(fake_a.requests) == before

        listed = httpx.get(f"{health}/api/v1/health/providers", headers=admin).json()["data"]
        row = next(p for p in listed if p["provider_id"] == provider_a)
        assert row["override"]["reason"] == f"maintenance {tag}"

        assert httpx.delete(url, headers=admin).status_code == 204
        wait_for(lambda: served_by(f"ova-{tag}"), timeout=30)
        log = httpx.get(
            f"{health}/api/v1/health/overrides/log", params={"provider_id": provider_a},
            headers=admin,
        ).json()["data"]  # fmt: skip
        assert [(e["action"], e["actor"]) for e in log] == [
            ("clear", "bootstrap"),
            ("set", "bootstrap"),
        ]
    finally:
        srv_a.stop()
        srv_b.stop()
