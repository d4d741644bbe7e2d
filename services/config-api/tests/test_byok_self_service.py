"""Issue 16 items 1-2: a user's own provider keys (BYOK) on the providers an admin opened to
them, key tests limited per user, the public catalog of their tier, and the lab templates —
each authorised by the user's own virtual key; other users' data answers 404."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import pytest

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI, start_fake_openai


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeOpenAI, LocalServer]]:
    fake, server = start_fake_openai("byok-upstream")
    try:
        yield fake, server
    finally:
        server.stop()


async def _user(
    client: httpx.AsyncClient, admin: dict[str, str], user: str, tier: str = "free"
) -> dict[str, str]:
    r = await client.post("/api/v1/users", json={"id": user, "tier": tier}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/keys", json={"user_id": user}, headers=admin)
    return {"Authorization": f"Bearer {r.json()['key']}"}


async def test_byok_opened_only_to_cloud_kinds(
    client: httpx.AsyncClient, admin: dict[str, str], uid: Callable[[str], str]
) -> None:
    r = await client.post(
        "/api/v1/providers",
        json={
            "name": uid("sh"),
            "kind": "vllm",
            "base_url": "http://x:8000/v1",
            "byok_enabled": True,
        },
        headers=admin,
    )
    assert r.status_code == 422 and r.json()["error"]["param"] == "byok_enabled", r.text
    name = uid("cl")
    r = await client.post("/api/v1/providers", json={"name": name, "kind": "groq"}, headers=admin)
    assert r.status_code == 201 and r.json()["byok_enabled"] is False
    pid = r.json()["id"]
    r = await client.patch(f"/api/v1/providers/{name}", json={"byok_enabled": True}, headers=admin)
    assert r.status_code == 200 and r.json()["byok_enabled"] is True
    # turning it into a self-hosted kind while open is refused too
    r = await client.patch(
        f"/api/v1/providers/{name}",
        json={"kind": "vllm", "base_url": "http://x:8000/v1"},
        headers=admin,
    )
    assert r.status_code == 422, r.text
    audit = (await client.get(f"/api/v1/audit?entity_id={pid}", headers=admin)).json()["data"]
    assert any(a["diff"].get("byok_enabled") == [False, True] for a in audit), audit


async def test_my_provider_keys(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    uid: Callable[[str], str],
    upstream: tuple[FakeOpenAI, LocalServer],
) -> None:
    fake, server = upstream
    me, other = uid("byok-me"), uid("byok-other")
    mine, theirs = await _user(client, admin, me), await _user(client, admin, other)
    opened, closed = uid("open"), uid("closed")
    for name, is_open in ((opened, True), (closed, False)):
        r = await client.post(
            "/api/v1/providers",
            json={
                "name": name,
                "kind": "openai",
                "base_url": server.url + "/v1",
                "api_key": "sk-platform-key-0000",
                "byok_enabled": is_open,
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text

    listed = (await client.get("/api/v1/byok/providers", headers=mine)).json()["data"]
    names = {p["provider_name"]: p for p in listed}
    assert opened in names and closed not in names and names[opened]["has_key"] is False
    assert all("base_url" not in p for p in listed)

    # add, on an open provider only; a closed or unknown one answers 404 alike
    secret = "sk-my-own-key-11112222"
    r = await client.put(
        f"/api/v1/users/{me}/provider-keys/{opened}", json={"api_key": secret}, headers=mine
    )
    assert r.status_code == 200, r.text
    assert r.json()["api_key_hint"].endswith("2222") and secret not in r.text
    for ref in (closed, "no-such-provider"):
        r = await client.put(
            f"/api/v1/users/{me}/provider-keys/{ref}", json={"api_key": secret}, headers=mine
        )
        assert r.status_code == 404 and r.json()["error"]["code"] == "provider_not_open_to_byok"
    # a user never sets a URL: the body takes only the key
    r = await client.put(
        f"/api/v1/users/{me}/provider-keys/{opened}",
        json={"api_key": secret, "base_url": "http://169.254.169.254/"},
        headers=mine,
    )
    assert r.status_code == 422, r.text
    listed = (await client.get("/api/v1/byok/providers", headers=mine)).json()["data"]
    assert {p["provider_name"]: p["has_key"] for p in listed}[opened] is True

    # test: sent to the provider's configured URL, with the user's key
    fake.probes.clear()
    r = await client.post(f"/api/v1/users/{me}/provider-keys/{opened}/test", headers=mine)
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    assert fake.probes[-1]["headers"]["Authorization"] == f"Bearer {secret}"

    # replace
    new_secret = "sk-my-new-key-33334444"
    r = await client.put(
        f"/api/v1/users/{me}/provider-keys/{opened}", json={"api_key": new_secret}, headers=mine
    )
    assert r.status_code == 200 and r.json()["api_key_hint"].endswith("4444")
    fake.behaviour.api_key = new_secret  # the upstream now takes only the new key
    try:
        r = await client.post(f"/api/v1/users/{me}/provider-keys/{opened}/test", headers=mine)
        assert r.json()["ok"] is True, r.text
    finally:
        fake.behaviour.api_key = None

    # another user's keys: 404 to read, add, test or remove, like unknown ones
    base = f"/api/v1/users/{me}/provider-keys"
    assert (await client.get(base, headers=theirs)).status_code == 404
    assert (await client.get(f"{base}/{opened}", headers=theirs)).status_code == 404
    r = await client.put(f"{base}/{opened}", json={"api_key": "sk-evil-000000"}, headers=theirs)
    assert r.status_code == 404
    assert (await client.post(f"{base}/{opened}/test", headers=theirs)).status_code == 404
    assert (await client.delete(f"{base}/{opened}", headers=theirs)).status_code == 404
    assert (
        (await client.get(f"{base}/{opened}", headers=mine)).json()["api_key_hint"].endswith("4444")
    )

    # the audit names the user as the actor, never the key
    r = await client.get(f"/api/v1/audit?entity=byok_key&actor=user:{me}", headers=admin)
    audit = r.json()["data"]
    assert len(audit) == 2 and {a["action"] for a in audit} == {"create", "update"}
    assert secret not in str(audit) and new_secret not in str(audit)

    # remove
    assert (await client.delete(f"{base}/{opened}", headers=mine)).status_code == 204
    assert (await client.get(f"{base}/{opened}", headers=mine)).status_code == 404


async def test_key_tests_are_limited_per_user(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    uid: Callable[[str], str],
    upstream: tuple[FakeOpenAI, LocalServer],
) -> None:
    _, server = upstream
    me, other = uid("kt-me"), uid("kt-other")
    mine, theirs = await _user(client, admin, me), await _user(client, admin, other)
    prov = uid("kt-prov")
    r = await client.post(
        "/api/v1/providers",
        json={"name": prov, "kind": "openai", "base_url": server.url + "/v1", "byok_enabled": True},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    for user, headers in ((me, mine), (other, theirs)):
        r = await client.put(
            f"/api/v1/users/{user}/provider-keys/{prov}",
            json={"api_key": "sk-some-key-55556666"},
            headers=headers,
        )
        assert r.status_code == 200, r.text
    url = f"/api/v1/users/{me}/provider-keys/{prov}/test"
    for _ in range(10):
        assert (await client.post(url, headers=mine)).status_code == 200
    r = await client.post(url, headers=mine)
    assert r.status_code == 429 and r.json()["error"]["code"] == "key_test_rate_limited", r.text
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # the limit is per user, and admins are not held to it
    r = await client.post(f"/api/v1/users/{other}/provider-keys/{prov}/test", headers=theirs)
    assert r.status_code == 200
    assert (await client.post(url, headers=admin)).status_code == 200


async def test_catalog_of_my_tier(
    client: httpx.AsyncClient, admin: dict[str, str], uid: Callable[[str], str]
) -> None:
    tier_low, tier_high = uid("cat-low"), uid("cat-high")
    for name, rank in ((tier_low, 0), (tier_high, 5)):
        r = await client.put(f"/api/v1/tiers/{name}", json={"rank": rank}, headers=admin)
        assert r.status_code == 200 and r.json()["byok_fee_pct"] == "0", r.text
    low = await _user(client, admin, uid("cat-u"), tier_low)
    prov, gated_prov = uid("catp"), uid("catg")
    for name, min_tier in ((prov, "free"), (gated_prov, tier_high)):
        r = await client.post(
            "/api/v1/providers",
            json={"name": name, "kind": "groq", "min_tier": min_tier},
            headers=admin,
        )
        assert r.status_code == 201, r.text
    tag = uid("m").replace("-", "")
    entries = [
        # (name, provider, min_tier, enabled, deprecated, input, output, context)
        (f"{tag}-cheap", prov, "free", True, False, "0.10", "0.20", 8192),
        (f"{tag}-big", prov, "free", True, True, "3", "15", 200000),
        (f"{tag}-off", prov, "free", False, False, "1", "1", 1000),
        (f"{tag}-gold", prov, tier_high, True, False, "5", "5", 1000),
        (f"{tag}-gated", gated_prov, "free", True, False, "1", "1", 1000),
    ]
    for name, provider, min_tier, enabled, deprecated, pin, pout, ctx in entries:
        r = await client.post(
            "/api/v1/models",
            json={
                "provider": provider,
                "upstream_model": name,
                "min_tier": min_tier,
                "enabled": enabled,
                "deprecated": deprecated,
                "input_price_per_mtok": pin,
                "output_price_per_mtok": pout,
                "context_window": ctx,
                "purposes": ["chat"],
                "capabilities": {"tools": name.endswith("big")},
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text

    r = await client.get(f"/api/v1/catalog?search={tag}", headers=low)
    assert r.status_code == 200, r.text
    page = r.json()
    assert [m["name"] for m in page["data"]] == [f"{tag}-big", f"{tag}-cheap"]
    assert page["total"] == 2
    big = page["data"][0]
    assert big["deprecated"] is True and big["context_window"] == 200000
    assert big["capabilities"]["tools"] is True and big["purposes"] == ["chat"]
    assert Decimal(big["input_price_per_mtok"]) == 3 and Decimal(big["output_price_per_mtok"]) == 15
    assert "base_url" not in big and "priority" not in big and "upstream_model" not in big
    # sort, filters and pagination
    r = await client.get(f"/api/v1/catalog?search={tag}&sort=-price&limit=1&offset=1", headers=low)
    assert [m["name"] for m in r.json()["data"]] == [f"{tag}-cheap"] and r.json()["total"] == 2
    r = await client.get(f"/api/v1/catalog?search={tag}&capability=tools", headers=low)
    assert [m["name"] for m in r.json()["data"]] == [f"{tag}-big"]
    r = await client.get(f"/api/v1/catalog?search={tag}&deprecated=false", headers=low)
    assert [m["name"] for m in r.json()["data"]] == [f"{tag}-cheap"]
    r = await client.get(f"/api/v1/catalog?search={tag}&sort=-context_length", headers=low)
    assert [m["name"] for m in r.json()["data"]] == [f"{tag}-big", f"{tag}-cheap"]
    # a user may not look at another tier's catalog; an admin may
    r = await client.get(f"/api/v1/catalog?tier={tier_high}", headers=low)
    assert r.status_code == 403
    r = await client.get(f"/api/v1/catalog?search={tag}&tier={tier_high}", headers=admin)
    assert {m["name"] for m in r.json()["data"]} == {
        f"{tag}-big",
        f"{tag}-cheap",
        f"{tag}-gold",
        f"{tag}-gated",
    }
    r = await client.get("/api/v1/catalog?sort=cost", headers=low)
    assert r.status_code == 422
    assert (await client.get("/api/v1/catalog")).status_code == 401


async def test_lab_templates_take_a_key(
    client: httpx.AsyncClient, admin: dict[str, str], uid: Callable[[str], str]
) -> None:
    mine = await _user(client, admin, uid("lab-u"))
    r = await client.get("/api/v1/lab/templates", headers=mine)
    assert r.status_code == 200 and r.json()["total"] == 10
    assert (await client.get("/api/v1/lab/templates")).status_code == 401


async def test_tier_byok_fee(client: httpx.AsyncClient, admin: dict[str, str], uid) -> None:
    tier = uid("fee")
    r = await client.put(
        f"/api/v1/tiers/{tier}", json={"rank": 1, "byok_fee_pct": "2.5"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["byok_fee_pct"] == "2.5", r.text
    for bad in ("-1", "100.5", "0.00001"):
        r = await client.put(
            f"/api/v1/tiers/{tier}", json={"rank": 1, "byok_fee_pct": bad}, headers=admin
        )
        assert r.status_code == 422, (bad, r.text)
    snap = (await client.get("/api/v1/snapshot", headers=admin)).json()
    tiers = [e for e in snap["entities"] if e["entity"] == "tier" and e["entity_id"] == tier]
    assert tiers[0]["data"]["byok_fee_pct"] == "2.5"


async def test_tier_lab_quota(client: httpx.AsyncClient, admin: dict[str, str], uid) -> None:
    tiers = {
        t["name"]: t for t in (await client.get("/api/v1/tiers", headers=admin)).json()["data"]
    }
    seeded = {
        n: tiers[n]["lab_monthly_quota"] for n in ("free", "starter", "professional", "enterprise")
    }
    assert seeded == {"free": 100, "starter": 1000, "professional": 5000, "enterprise": 10000}
    tier = uid("lab")
    r = await client.put(
        f"/api/v1/tiers/{tier}", json={"rank": 1, "lab_monthly_quota": 5}, headers=admin
    )
    assert r.status_code == 200 and r.json()["lab_monthly_quota"] == 5, r.text
    r = await client.put(
        f"/api/v1/tiers/{tier}", json={"rank": 1, "lab_monthly_quota": 0}, headers=admin
    )
    assert r.status_code == 422
    snap = (await client.get("/api/v1/snapshot", headers=admin)).json()
    data = next(
        e["data"] for e in snap["entities"] if e["entity"] == "tier" and e["entity_id"] == tier
    )
    assert data["lab_monthly_quota"] == 5
