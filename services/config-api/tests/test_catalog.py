"""Catalog listing (filters, sort, pagination), routing rules, tiers, users, lab, audit."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
async def catalog(client, admin) -> str:
    prov = "catalog-prov"
    r = await client.post(
        "/api/v1/providers", headers=admin, json={"name": prov, "kind": "mistral"}
    )
    assert r.status_code == 201, r.text
    models = [
        {
            "upstream_model": "cat-small",
            "input_price_per_mtok": 0.1,
            "output_price_per_mtok": 0.1,
            "context_window": 8000,
        },
        {
            "upstream_model": "cat-large",
            "input_price_per_mtok": 3,
            "output_price_per_mtok": 9,
            "context_window": 128000,
            "capabilities": {"tools": True, "vision": True},
            "deprecated": True,
        },
        {
            "upstream_model": "cat-embed",
            "purposes": ["embeddings"],
            "enabled": False,
            "input_price_per_mtok": 0.01,
        },
    ]
    for body in models:
        r = await client.post("/api/v1/models", headers=admin, json={"provider": prov, **body})
        assert r.status_code == 201, r.text
    return prov


async def _names(client, admin, query: str) -> list[str]:
    r = await client.get(f"/api/v1/models?{query}", headers=admin)
    assert r.status_code == 200, r.text
    return [m["name"] for m in r.json()["data"]]


async def test_model_filters_and_sorting(client, admin, catalog) -> None:
    p = f"provider={catalog}"
    assert await _names(client, admin, p) == ["cat-embed", "cat-large", "cat-small"]
    assert await _names(client, admin, f"{p}&sort=-price") == [
        "cat-large",
        "cat-small",
        "cat-embed",
    ]
    assert await _names(client, admin, f"{p}&sort=context_length") == [
        "cat-small",
        "cat-large",
        "cat-embed",
    ]
    assert await _names(client, admin, f"{p}&capability=vision") == ["cat-large"]
    assert await _names(client, admin, f"{p}&purpose=embeddings") == ["cat-embed"]
    assert await _names(client, admin, f"{p}&enabled=false") == ["cat-embed"]
    assert await _names(client, admin, f"{p}&deprecated=true") == ["cat-large"]
    assert await _names(client, admin, f"{p}&deprecated=false") == ["cat-embed", "cat-small"]
    assert await _names(client, admin, "search=CAT-SM") == ["cat-small"]
    page = (await client.get(f"/api/v1/models?{p}&limit=2&offset=2", headers=admin)).json()
    assert page["total"] == 3 and [m["name"] for m in page["data"]] == ["cat-small"]
    assert page["data"][0]["provider_name"] == catalog
    for bad in ("sort=cost", "capability=telepathy", "limit=0", "purpose=x"):
        assert (await client.get(f"/api/v1/models?{bad}", headers=admin)).status_code == 422


async def test_model_patch_and_routing_rules(client, admin, catalog) -> None:
    models = (await client.get(f"/api/v1/models?provider={catalog}", headers=admin)).json()["data"]
    small = next(m for m in models if m["name"] == "cat-small")
    r = await client.patch(
        f"/api/v1/models/{small['id']}",
        headers=admin,
        json={"power_level": "eco", "cached_price_per_mtok": 0.05, "aliases": ["tiny"]},
    )
    assert r.status_code == 200 and r.json()["cached_price_per_mtok"] == "0.05"
    r = await client.patch(f"/api/v1/models/{small['id']}", headers=admin, json={"enabled": None})
    assert r.status_code == 422 and "cannot be null" in r.json()["error"]["message"]
    rule = {
        "name": "cat-eco",
        "power_level": "eco",
        "tier": "free",
        "task_type": "chat",
        "targets": ["tiny", "cat-large"],
        "max_tokens": 4000,
        "requires_byok": False,
    }
    r = await client.post("/api/v1/routing-rules", headers=admin, json=rule)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert (await client.post("/api/v1/routing-rules", headers=admin, json=rule)).status_code == 409
    r = await client.patch(f"/api/v1/routing-rules/{rid}", headers=admin, json={"min_tokens": 5000})
    assert r.status_code == 422
    r = await client.patch("/api/v1/routing-rules/cat-eco", headers=admin, json={"priority": 1})
    assert r.status_code == 200 and r.json()["priority"] == 1
    listed = (await client.get("/api/v1/routing-rules", headers=admin)).json()["data"]
    assert any(x["id"] == rid for x in listed)


async def test_tiers_and_users(client, admin, uid, catalog) -> None:
    tiers = (await client.get("/api/v1/tiers", headers=admin)).json()["data"]
    ranks = {t["name"]: t["rank"] for t in tiers}
    assert [ranks[n] for n in ("free", "starter", "professional", "enterprise")] == [0, 1, 2, 3]
    r = await client.put(
        "/api/v1/tiers/starter",
        headers=admin,
        json={"rank": 1, "monthly_credits_usd": 12.5, "rpm_limit": 90},
    )
    assert r.status_code == 200 and r.json()["monthly_credits_usd"] == "12.5"
    user = uid("cu")
    r = await client.post("/api/v1/users", headers=admin, json={"id": user, "tier": "gold"})
    assert r.status_code == 422 and "known tiers" in r.json()["error"]["message"]
    assert (await client.post("/api/v1/users", headers=admin, json={"id": user})).status_code == 201
    r = await client.patch(f"/api/v1/users/{user}", headers=admin, json={"tier": "starter"})
    assert r.status_code == 200 and r.json()["tier"] == "starter"
    key = (
        await client.post(
            "/api/v1/keys",
            headers=admin,
            json={
                "user_id": user,
                "allowed_models": ["cat-small"],
                "rpm_limit": 10,
                "budget_usd": 2,
                "expires_at": "2099-01-01T00:00:00Z",
            },
        )
    ).json()
    assert key["allowed_models"] == ["cat-small"] and key["budget_usd"] == "2"
    r = await client.patch(
        f"/api/v1/keys/{key['id']}", headers=admin, json={"allowed_models": None}
    )
    assert r.status_code == 200 and r.json()["allowed_models"] is None
    assert (await client.delete(f"/api/v1/users/{user}", headers=admin)).status_code == 204
    assert (await client.get(f"/api/v1/keys/{key['id']}", headers=admin)).status_code == 404
    generated = (await client.post("/api/v1/users", headers=admin, json={})).json()
    assert generated["id"] and generated["tier"] == "free"


async def test_lab_templates(app, client, admin, catalog) -> None:
    templates = (await client.get("/api/v1/lab/templates", headers=admin)).json()["data"]
    assert len(templates) >= 10
    assert {t["category"] for t in templates} == {
        "explanation",
        "creative",
        "coding",
        "analysis",
        "reasoning",
        "summarization",
        "translation",
        "mathematics",
        "conversation",
    }
    coding = next(t for t in templates if t["category"] == "coding")
    assert coding["suggested_models"] and "cat-embed" not in coding["suggested_models"]
    assert all(t["messages"][0]["content"] == t["prompt"] for t in templates)

    # the suggestions are the ends of every chat model by price (the priciest for the heavy
    # templates, the cheapest for the others), as ordering every name would give
    async with app.state.config_api.pool.acquire() as conn:
        names = [
            r["name"]
            for r in await conn.fetch(
                "SELECT name, max(input_price_per_mtok + output_price_per_mtok) AS price"
                " FROM models WHERE enabled AND NOT deprecated AND 'chat' = ANY(purposes)"
                " GROUP BY name ORDER BY price DESC, name"
            )
        ]
    assert {tuple(t["suggested_models"]) for t in templates} == {
        tuple(names[:3]),
        tuple(reversed(names[-3:])),
    }


async def test_audit_filters_and_request_id(client, admin, uid) -> None:
    user = uid("aud")
    r = await client.post(
        "/api/v1/users", headers={**admin, "x-request-id": f"req-{user}"}, json={"id": user}
    )
    assert r.headers["x-request-id"] == f"req-{user}"
    await client.patch(f"/api/v1/users/{user}", headers=admin, json={"monthly_budget_usd": 3})
    entries = (
        await client.get(f"/api/v1/audit?entity=user&entity_id={user}", headers=admin)
    ).json()
    assert entries["total"] == 2
    update, create = entries["data"]
    assert create["action"] == "create" and create["request_id"] == f"req-{user}"
    assert create["actor"] == "bootstrap" and create["before"] is None
    assert update["diff"] == {"monthly_budget_usd": [None, "3"]}
    assert update["revision"] > create["revision"]
    by_req = (await client.get(f"/api/v1/audit?request_id=req-{user}", headers=admin)).json()
    assert by_req["total"] == 1
    none = (await client.get("/api/v1/audit?since=2999-01-01T00:00:00Z", headers=admin)).json()
    assert none["total"] == 0


async def test_routing_strategy_on_models_and_rules(client, admin, catalog) -> None:
    """Issue 19: ``routing_strategy`` (weighted by default) on a model and on a rule, in the
    answer and in the config event's data (the snapshot); anything else is a 422."""
    models = (await client.get(f"/api/v1/models?provider={catalog}", headers=admin)).json()["data"]
    large = next(m for m in models if m["name"] == "cat-large")
    assert large["routing_strategy"] == "weighted"
    r = await client.patch(
        f"/api/v1/models/{large['id']}", headers=admin, json={"routing_strategy": "least_busy"}
    )
    assert r.status_code == 200 and r.json()["routing_strategy"] == "least_busy", r.text
    for bad in ("fastest", None):
        r = await client.patch(
            f"/api/v1/models/{large['id']}", headers=admin, json={"routing_strategy": bad}
        )
        assert r.status_code == 422, r.text
    r = await client.post(
        "/api/v1/models",
        headers=admin,
        json={"provider": catalog, "upstream_model": "cat-fast", "routing_strategy": "latency"},
    )
    assert r.status_code == 201 and r.json()["routing_strategy"] == "latency", r.text
    rule = {"name": "cat-busy", "targets": ["cat-large"], "routing_strategy": "least_busy"}
    r = await client.post("/api/v1/routing-rules", headers=admin, json=rule)
    assert r.status_code == 201 and r.json()["routing_strategy"] == "least_busy", r.text
    r = await client.patch(
        "/api/v1/routing-rules/cat-busy", headers=admin, json={"routing_strategy": None}
    )
    assert r.status_code == 200 and r.json()["routing_strategy"] is None, r.text
    snap = (await client.get("/api/v1/snapshot", headers=admin)).json()["entities"]
    data = {(e["entity"], e["entity_id"]): e["data"] for e in snap}
    assert data[("model", large["id"])]["routing_strategy"] == "least_busy"
    assert data[("routing_rule", r.json()["id"])]["routing_strategy"] is None
