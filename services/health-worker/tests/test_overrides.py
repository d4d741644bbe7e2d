"""Issue 16 item 6: an admin forces a provider up or down (reason, optional expiry), audited and
published as a health event; a manual check probes now and updates the state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from turnout_common.testing.upstream import start_fake_openai
from turnout_health.testing import ADMIN, Harness, provider_data

H = {"Authorization": f"Bearer {ADMIN}"}


def _forced(status: str):  # type: ignore[no-untyped-def]
    return lambda e: e.reason.startswith("admin override") and e.status == status


async def test_override_down_then_clear(harness: Harness) -> None:
    _, server = start_fake_openai("overridden")
    pid = str(uuid.uuid4())
    base = f"/api/v1/health/providers/{pid}"
    try:
        await harness.publish_config("provider", pid, provider_data(pid, server.url + "/v1"))
        await harness.wait_event(pid, lambda e: e.status == "healthy")

        body = {"status": "down", "reason": "maintenance window"}
        r = await harness.client.put(f"{base}/override", json=body, headers=H)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "down" and r.json()["actor"] == "bootstrap"
        await harness.wait_event(pid, _forced("down"))
        forced = harness.events_for(pid)[-1]
        assert forced.auto_disabled and forced.circuit == "open"
        assert "maintenance window" in forced.reason

        # the provider is still probed (healthy); a check now says so, but publishes nothing
        r = await harness.client.post(f"{base}/check", headers=H)
        assert r.status_code == 200, r.text
        check = r.json()
        assert check["probe_status"] == "healthy" and check["status"] == "healthy"
        assert check["override"]["status"] == "down"
        assert harness.events_for(pid)[-1] == forced
        listed = (await harness.client.get("/api/v1/health/providers", headers=H)).json()
        row = next(p for p in listed["data"] if p["provider_id"] == pid)
        assert row["override"]["reason"] == "maintenance window" and row["status"] == "healthy"

        # cleared: the measured state goes out again
        assert (await harness.client.delete(f"{base}/override", headers=H)).status_code == 204
        await harness.wait_event(
            pid, lambda e: e.reason.startswith("override cleared") and e.status == "healthy"
        )
        assert not harness.events_for(pid)[-1].auto_disabled
        assert (await harness.client.delete(f"{base}/override", headers=H)).status_code == 404

        log = (
            await harness.client.get(f"/api/v1/health/overrides/log?provider_id={pid}", headers=H)
        ).json()
        assert [(e["action"], e["status"]) for e in log["data"]] == [
            ("clear", "down"),
            ("set", "down"),
        ]
        assert {e["actor"] for e in log["data"]} == {"bootstrap"}
    finally:
        server.stop()


async def test_override_up_expires(harness: Harness) -> None:
    pid = str(uuid.uuid4())
    dead = "http://127.0.0.1:9/v1"  # nothing listens: probes fail, the circuit opens
    await harness.publish_config("provider", pid, provider_data(pid, dead))
    await harness.wait_event(pid, lambda e: e.status == "down")
    until = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    r = await harness.client.put(
        f"/api/v1/health/providers/{pid}/override",
        json={"status": "up", "reason": "false alarm", "expires_at": until},
        headers=H,
    )
    assert r.status_code == 200, r.text
    await harness.wait_event(pid, _forced("healthy"))
    assert not harness.events_for(pid)[-1].auto_disabled
    # the check still sees it down, and the override holds
    r = await harness.client.post(f"/api/v1/health/providers/{pid}/check", headers=H)
    assert r.json()["probe_status"] == "down" and r.json()["override"]["status"] == "up"
    # time is up: the measured state is published again
    await harness.wait_event(pid, lambda e: e.reason.startswith("override expired"))
    assert harness.events_for(pid)[-1].status in ("down", "unknown")
    log = (
        await harness.client.get(f"/api/v1/health/overrides/log?provider_id={pid}", headers=H)
    ).json()
    assert [e["action"] for e in log["data"]] == ["expire", "set"]
    assert log["data"][0]["actor"] == "system"


async def test_override_input_and_auth(harness: Harness) -> None:
    pid = str(uuid.uuid4())
    await harness.publish_config("provider", pid, provider_data(pid, "http://127.0.0.1:9/v1"))
    url = f"/api/v1/health/providers/{pid}/override"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    naive = (datetime.now() + timedelta(minutes=1)).replace(tzinfo=None).isoformat()
    bad = [
        {"status": "sideways", "reason": "x"},
        {"status": "down"},
        {"status": "down", "reason": ""},
        {"status": "down", "reason": "line\nbreak"},
        {"status": "down", "reason": "x", "expires_at": past},
        {"status": "down", "reason": "x", "expires_at": naive},
        {"status": "down", "reason": "x", "url": "http://elsewhere"},
    ]
    for body in bad:
        r = await harness.client.put(url, json=body, headers=H)
        assert r.status_code == 422, (body, r.text)
    ok = {"status": "down", "reason": "x"}
    assert (await harness.client.put(url, json=ok)).status_code == 401
    r = await harness.client.put("/api/v1/health/providers/no-such/override", json=ok, headers=H)
    assert r.status_code == 404
    r = await harness.client.post("/api/v1/health/providers/no-such/check", headers=H)
    assert r.status_code == 404
    assert (await harness.client.post(f"/api/v1/health/providers/{pid}/check")).status_code == 401
