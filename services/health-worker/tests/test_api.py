"""The admin API: auth, current state, history, passive stats; ops endpoints."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from turnout_common.testing.oidc import Jwks
from turnout_common.testing.upstream import start_fake_openai
from turnout_health.testing import ADMIN, MINTED, Harness, provider_data, wait_until

H = {"Authorization": f"Bearer {ADMIN}"}


async def test_admin_auth(harness: Harness) -> None:
    r = await harness.client.get("/api/v1/health/providers")
    assert r.status_code == 401 and "Bearer" in r.json()["error"]["message"]
    r = await harness.client.get(
        "/api/v1/health/providers", headers={"Authorization": "Bearer nope-nope"}
    )
    assert r.status_code == 401  # an unknown credential is 401 (403 is a valid non-admin)
    assert r.json()["error"]["type"] == "authentication_error"
    assert r.json()["error"]["code"] == "invalid_token"
    r = await harness.client.get(
        "/api/v1/health/providers", headers={"Authorization": f"Bearer {MINTED}"}
    )
    assert r.status_code == 200  # minted token known from the snapshot's admin_token entity
    await harness.publish_config(
        "admin_token", "tok1", {"id": "tok1", "name": "ci", "token_hash": "x", "revoked": True}
    )
    await wait_until(lambda: not harness.app.state.turnout.registry.admin_token_hashes)
    r = await harness.client.get(
        "/api/v1/health/providers", headers={"Authorization": f"Bearer {MINTED}"}
    )
    assert r.status_code == 401  # revoked


async def test_oidc_admin_auth(harness: Harness, sso: Jwks) -> None:
    """SSO: a JWT with the admin role is an admin; without it 403; a bad signature 401."""
    url = "/api/v1/health/providers"
    admin = {"Authorization": f"Bearer {sso.token(['dev', 'admin'], sub='sso-admin')}"}
    r = await harness.client.get(url, headers=admin)
    assert r.status_code == 200, r.text
    viewer = {"Authorization": f"Bearer {sso.token(['viewer'])}"}
    r = await harness.client.get(url, headers=viewer)
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    for bad in (sso.forged(["admin"]), sso.token(["admin"], exp=1000)):
        r = await harness.client.get(url, headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "invalid_token"


async def test_providers_and_history(harness: Harness) -> None:
    _, server = start_fake_openai("listed")
    pid = str(uuid.uuid4())
    try:
        await harness.publish_config("provider", pid, provider_data(pid, server.url + "/v1"))
        await harness.wait_event(pid, lambda e: e.status == "healthy")
        r = await harness.client.get("/api/v1/health/providers", headers=H)
        assert r.status_code == 200
        row = next(p for p in r.json()["data"] if p["provider_id"] == pid)
        assert row["status"] == "healthy" and row["circuit"] == "closed"
        assert row["kind"] == "vllm" and row["latency_ms"] > 0 and row["last_probe_at"]
        pool = harness.app.state.turnout.pool
        while True:  # the probe counter is global: wait for this provider's own history
            async with pool.acquire() as conn:
                n = await conn.fetchval(
                    "SELECT count(*) FROM probe_history WHERE provider_id = $1", pid
                )
            if n >= 3:
                break
            await asyncio.sleep(0.05)
        r = await harness.client.get(f"/api/v1/health/providers/{pid}/history?limit=2", headers=H)
        page = r.json()
        assert len(page["data"]) == 2 and page["next_before"] == page["data"][-1]["id"]
        older = await harness.client.get(
            f"/api/v1/health/providers/{pid}/history?limit=2&before={page['next_before']}",
            headers=H,
        )
        assert all(x["id"] < page["next_before"] for x in older.json()["data"])
    finally:
        server.stop()
    r = await harness.client.get("/api/v1/health/providers/nope/history", headers=H)
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
    r = await harness.client.get(f"/api/v1/health/providers/{pid}/history?limit=0", headers=H)
    assert r.status_code == 422 and "limit" in r.json()["error"]["message"]


async def test_list_pages_by_name_and_filters_by_status(harness: Harness) -> None:
    """A page of the list by name (the console's 20 of 10,000), and a status filter."""
    tag = uuid.uuid4().hex[:6]
    pids = {name: str(uuid.uuid4()) for name in (f"{tag}-c", f"{tag}-a", f"{tag}-b")}
    for name, pid in pids.items():  # nothing listens there: never healthy
        data = provider_data(pid, "http://127.0.0.1:9/v1", name=name, enabled=False)
        await harness.publish_config("provider", pid, data)
    registry = harness.app.state.turnout.registry
    await wait_until(lambda: set(pids.values()) <= set(registry.providers))
    everything = (await harness.client.get("/api/v1/health/providers", headers=H)).json()
    assert everything["limit"] == everything["total"] == len(everything["data"])
    names = sorted(p["name"] or p["provider_id"] for p in everything["data"])
    at = names.index(f"{tag}-a")
    r = await harness.client.get(
        "/api/v1/health/providers", params={"limit": 2, "offset": at}, headers=H
    )
    page = r.json()
    assert r.status_code == 200 and page["total"] == everything["total"]
    assert [p["name"] for p in page["data"]] == [f"{tag}-a", f"{tag}-b"]
    assert page["limit"] == 2 and page["offset"] == at
    healthy = await harness.client.get("/api/v1/health/providers?status=healthy", headers=H)
    assert not {p["provider_id"] for p in healthy.json()["data"]} & set(pids.values())
    assert all(p["status"] == "healthy" for p in healthy.json()["data"])
    bad = await harness.client.get("/api/v1/health/providers?status=fine", headers=H)
    assert bad.status_code == 422
    assert (
        await harness.client.get("/api/v1/health/providers?limit=0", headers=H)
    ).status_code == 422

    # sort=status: the worst first, an override counting as the state it forces; by name within
    forced = f"/api/v1/health/providers/{pids[f'{tag}-b']}/override"
    r = await harness.client.put(forced, headers=H, json={"status": "down", "reason": "test"})
    assert r.status_code == 200, r.text
    r = await harness.client.get(
        "/api/v1/health/providers", params={"limit": 1000, "sort": "status"}, headers=H
    )
    listed = r.json()["data"]
    rank = {"down": 0, "degraded": 1, "unknown": 2, "healthy": 3}

    def seen(p: dict[str, Any]) -> str:
        if p["override"]:
            return "down" if p["override"]["status"] == "down" else "healthy"
        return str(p["status"])

    assert [rank[seen(p)] for p in listed] == sorted(rank[seen(p)] for p in listed)
    mine = [p["name"] for p in listed if p["provider_id"] in pids.values()]
    assert mine == [f"{tag}-b", f"{tag}-a", f"{tag}-c"]  # forced down, then unknown by name
    assert (await harness.client.delete(forced, headers=H)).status_code == 204


async def test_history_by_provider_name(harness: Harness) -> None:
    """SPEC: names may be used for ids; an id wins over another provider's equal name."""
    _, server = start_fake_openai("named")
    pid, other = str(uuid.uuid4()), str(uuid.uuid4())
    name = f"named-{pid[:8]}"
    registry = harness.app.state.turnout.registry
    try:
        await harness.publish_config(
            "provider", pid, provider_data(pid, server.url + "/v1", name=name)
        )
        await harness.wait_event(pid, lambda e: e.status == "healthy")
        pool = harness.app.state.turnout.pool
        async with asyncio.timeout(10):
            while True:
                async with pool.acquire() as conn:
                    n = await conn.fetchval(
                        "SELECT count(*) FROM probe_history WHERE provider_id = $1", pid
                    )
                if n:
                    break
                await asyncio.sleep(0.05)
        by_name = await harness.client.get(
            f"/api/v1/health/providers/{name}/history?limit=1", headers=H
        )
        assert by_name.status_code == 200, by_name.text
        assert by_name.json()["provider_id"] == pid and len(by_name.json()["data"]) == 1
        # a second provider named like the first one's id: the id still means the first
        await harness.publish_config(
            "provider", other, provider_data(other, server.url + "/v1", name=pid)
        )
        await wait_until(lambda: other in registry.providers)
        by_id = await harness.client.get(f"/api/v1/health/providers/{pid}/history", headers=H)
        assert by_id.status_code == 200 and by_id.json()["provider_id"] == pid
    finally:
        await harness.publish_config("provider", other, None)
        server.stop()
    r = await harness.client.get("/api/v1/health/providers/no-such-name/history", headers=H)
    assert r.status_code == 404 and "no-such-name" in r.json()["error"]["message"]


async def test_passive_errors_open_the_circuit(harness: Harness) -> None:
    """The router's own failed attempts trip the circuit even while probes still pass."""
    _, server = start_fake_openai("passive")
    pid = str(uuid.uuid4())
    try:
        await harness.publish_config("provider", pid, provider_data(pid, server.url + "/v1"))
        await harness.wait_event(pid, lambda e: e.status == "healthy")
        await harness.send_usage(pid, "dep-1", [502, 502, 200, 502, 502, 200])
        await harness.wait_event(pid, lambda e: e.circuit == "open")
        opened = next(e for e in harness.events_for(pid) if e.circuit == "open")
        assert re.fullmatch(r"passive: \d/\d attempts failed in the last 5 s", opened.reason)
        r = await harness.client.get("/api/v1/health/providers", headers=H)
        row = next(p for p in r.json()["data"] if p["provider_id"] == pid)
        assert row["status"] == "down"
        # probes still pass, so the circuit half-opens and closes again after the cool-down
        await harness.wait_event(pid, lambda e: e.reason.startswith("trial probe succeeded"))
        await asyncio.sleep(1.0)  # old errors do not re-open the circuit that just closed
        assert [e.circuit for e in harness.events_for(pid)][-1] == "closed"
        assert harness.app.state.service.runtime(pid).circuit.state == "closed"
    finally:
        server.stop()


async def test_ops_endpoints(harness: Harness) -> None:
    assert (await harness.client.get("/healthz")).status_code == 200
    r = await harness.client.get("/readyz")
    assert r.status_code == 200, r.text
    metrics = (await harness.client.get("/metrics")).text
    assert "turnout_health_probe_latency_seconds_bucket" in metrics
    assert "turnout_health_circuit_state{" in metrics
    assert "turnout_health_leader 1.0" in metrics
    assert 'route="/readyz",service="health-worker",status="200"' in metrics


async def test_deployment_circuit_from_passive_signals(harness: Harness) -> None:
    """One bad deployment opens its own circuit; the provider and its other deployment stay."""
    _, server = start_fake_openai("deployments")
    pid = str(uuid.uuid4())
    try:
        await harness.publish_config("provider", pid, provider_data(pid, server.url + "/v1"))
        await harness.wait_event(pid, lambda e: e.status == "healthy")
        await harness.send_usage(pid, "good", [200] * 7)
        pool = harness.app.state.turnout.pool

        async def good_counted() -> bool:
            async with pool.acquire() as conn:
                n = await conn.fetchval(
                    "SELECT sum(requests) FROM passive_buckets WHERE provider_id = $1", pid
                )
            return n == 7

        while not await good_counted():
            await asyncio.sleep(0.05)
        # usage partitions are consumed in any order: the good records are counted first, so
        # the provider's error rate never reaches 50 % (at most 5/12)
        await harness.send_usage(pid, "bad", [503, 503, 500, 502, 504])
        await harness.wait_event(pid, lambda e: e.circuit == "open", deployment_id="bad")
        opened = harness.events_for(pid, "bad")[0]
        assert opened.auto_disabled and opened.reason.startswith("passive: 5/5")
        await harness.wait_event(pid, lambda e: e.circuit == "half_open", deployment_id="bad")
        await harness.send_usage(pid, "bad", [200])  # the router's trial traffic
        await harness.wait_event(pid, lambda e: e.circuit == "closed", deployment_id="bad")
        seen = [(e.status, e.circuit) for e in harness.events_for(pid, "bad")]
        assert seen == [("down", "open"), ("unknown", "half_open"), ("healthy", "closed")]
        assert harness.events_for(pid, "good") == []
        assert [e.circuit for e in harness.events_for(pid)] == ["closed"]  # 5/12 < 50 %
        r = await harness.client.get("/api/v1/health/providers", headers=H)
        row = next(p for p in r.json()["data"] if p["provider_id"] == pid)
        assert [d["deployment_id"] for d in row["deployments"]] == ["bad"]
        assert {p["deployment_id"] for p in row["passive"]} == {"bad", "good"}
    finally:
        server.stop()
