"""Model references in payloads by public name, alias or catalog id (SPEC §2): an id is
stored, published and consumed as that entry's public name; anything else is a clear 422."""

from __future__ import annotations

from typing import Any

import pytest

from turnout_config_api.changes import Actor
from turnout_config_api.declarative import apply


@pytest.fixture
async def catalog(client, admin, uid) -> dict[str, Any]:
    prov = uid("refs-prov")
    r = await client.post("/api/v1/providers", headers=admin, json={"name": prov, "kind": "groq"})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = {"provider": prov}
    for key, extra in (("a", {}), ("b", {"aliases": [uid("refs-b-alias")]})):
        body = {"provider": prov, "upstream_model": uid("up"), "name": uid(f"refs-{key}"), **extra}
        r = await client.post("/api/v1/models", headers=admin, json=body)
        assert r.status_code == 201, r.text
        out[key] = r.json()
    return out


def _unknown(r: Any, param: str, ref: str) -> None:
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["param"] == param and repr(ref) in err["message"]
    assert "POST /api/v1/models" in err["message"]


async def test_route_by_id_name_or_alias(client, admin, catalog, config_events) -> None:
    a, b = catalog["a"], catalog["b"]
    alias = b["aliases"][0]
    body = {"model": a["id"], "fallbacks": [b["id"], alias, a["name"]]}
    r = await client.put("/api/v1/routes/embeddings", headers=admin, json=body)
    assert r.status_code == 200, r.text
    route = r.json()
    assert route["model"] == a["name"] and route["fallbacks"] == [b["name"], alias, a["name"]]
    listed = {
        x["purpose"]: x for x in (await client.get("/api/v1/routes", headers=admin)).json()["data"]
    }
    assert listed["embeddings"]["model"] == a["name"]
    one = await client.get("/api/v1/routes/embeddings", headers=admin)
    assert one.status_code == 200 and one.json() == listed["embeddings"]

    def published(events: list[Any]) -> list[Any]:
        return [e for e in events if e.entity == "route" and e.revision == route["revision"]]

    events = published(await config_events(lambda evs: bool(published(evs))))
    assert events[0].data["model"] == a["name"]  # what the router consumes: names
    assert events[0].data["fallbacks"] == [b["name"], alias, a["name"]]

    r = await client.put("/api/v1/routes/embeddings", headers=admin, json={"model": "refs-ghost"})
    _unknown(r, "model", "refs-ghost")
    r = await client.put(
        "/api/v1/routes/embeddings",
        headers=admin,
        json={"model": a["name"], "fallbacks": [b["id"], "0" * 32]},
    )
    _unknown(r, "fallbacks", "0" * 32)
    assert (await client.delete("/api/v1/routes/embeddings", headers=admin)).status_code == 204


async def test_routing_rule_by_id(client, admin, catalog, uid) -> None:
    a, b = catalog["a"], catalog["b"]
    body = {"name": uid("refs-rule"), "model": b["id"], "targets": [a["id"], b["name"]]}
    r = await client.post("/api/v1/routing-rules", headers=admin, json=body)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["model"] == b["name"] and rule["targets"] == [a["name"], b["name"]]
    r = await client.patch(
        f"/api/v1/routing-rules/{rule['id']}",
        headers=admin,
        json={"targets": [b["id"]], "model": a["id"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["targets"] == [b["name"]] and r.json()["model"] == a["name"]
    # ``model`` matches the requested model: ``auto`` (or any name) stays as it was
    r = await client.patch(
        f"/api/v1/routing-rules/{rule['id']}", headers=admin, json={"model": "auto"}
    )
    assert r.status_code == 200 and r.json()["model"] == "auto"

    r = await client.post(
        "/api/v1/routing-rules",
        headers=admin,
        json={"name": uid("refs-rule"), "targets": [a["id"], "refs-ghost"]},
    )
    _unknown(r, "targets", "refs-ghost")
    r = await client.patch(
        f"/api/v1/routing-rules/{rule['id']}", headers=admin, json={"targets": ["refs-ghost"]}
    )
    _unknown(r, "targets", "refs-ghost")


async def test_model_fallbacks_by_id(client, admin, catalog, uid) -> None:
    a, b = catalog["a"], catalog["b"]
    later = uid("refs-later")  # a fallback may name a model created later, as before
    body = {
        "provider": catalog["provider"],
        "upstream_model": uid("up"),
        "name": uid("refs-c"),
        "fallbacks": [a["id"], later],
    }
    r = await client.post("/api/v1/models", headers=admin, json=body)
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["fallbacks"] == [a["name"], later]
    r = await client.patch(
        f"/api/v1/models/{c['id']}", headers=admin, json={"fallbacks": [b["id"], a["name"]]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["fallbacks"] == [b["name"], a["name"]]


async def test_key_allowed_models_are_checked_like_routes(client, admin, catalog, uid) -> None:
    a, b = catalog["a"], catalog["b"]
    user = uid("refs-user")
    assert (await client.post("/api/v1/users", headers=admin, json={"id": user})).status_code == 201
    allowed = [a["id"], b["name"], b["aliases"][0]]
    r = await client.post(
        "/api/v1/keys", headers=admin, json={"user_id": user, "allowed_models": allowed}
    )
    assert r.status_code == 201, r.text
    # stored as given: the router resolves an id to the entry's name and aliases itself
    assert r.json()["allowed_models"] == allowed
    r = await client.post(
        "/api/v1/keys", headers=admin, json={"user_id": user, "allowed_models": ["refs-ghost"]}
    )
    _unknown(r, "allowed_models", "refs-ghost")
    key_id = (await client.get(f"/api/v1/keys?user_id={user}", headers=admin)).json()["data"][0]
    r = await client.patch(
        f"/api/v1/keys/{key_id['id']}", headers=admin, json={"allowed_models": ["refs-ghost"]}
    )
    _unknown(r, "allowed_models", "refs-ghost")


async def test_declarative_file_by_id_stays_idempotent(app, catalog) -> None:
    state = app.state.config_api
    a, b = catalog["a"], catalog["b"]
    rule = f"{a['name']}-rule"
    doc = {"routing_rules": [{"name": rule, "targets": [a["id"], b["id"]], "priority": 7}]}
    actor = Actor("refs-file")  # not config-file: test_declarative counts that actor's entries
    assert await apply(state.pool, state.ring, doc, actor=actor) == [f"+ routing rule {rule}"]
    assert await apply(state.pool, state.ring, doc, actor=actor) == []
    async with state.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT targets FROM routing_rules WHERE name = $1", rule)
    assert stored == [a["name"], b["name"]]
