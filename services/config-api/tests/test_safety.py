"""Bad input gets an actionable 4xx, in-use deletes get 409, nothing is half-written."""

from __future__ import annotations

import asyncpg
import pytest


async def _count(database_url: str, sql: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"name": "p1", "kind": "azure"}, 422, "kind"),
        ({"name": "p1", "kind": "vllm"}, 422, "base_url is required"),
        ({"name": "p1", "kind": "vllm", "base_url": "http://gpu:8000"}, 422, "must end with /v1"),
        ({"name": "p1", "kind": "openai", "base_url": "ftp://x"}, 422, "http(s) URL"),
        ({"name": "p1", "kind": "openai", "base_url": "not a url"}, 422, "http(s) URL"),
        ({"name": "bad name!", "kind": "openai"}, 422, "name"),
        ({"name": "p1", "kind": "openai", "weight": -1}, 422, "weight"),
        ({"name": "p1", "kind": "openai", "min_tier": "platinum"}, 422, "unknown tier"),
        ({"name": "p1", "kind": "openai", "api_kee": "sk-typo"}, 422, "api_kee"),
    ],
)
async def test_provider_validation(client, admin, body, status, fragment) -> None:
    r = await client.post("/api/v1/providers", headers=admin, json=body)
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]["message"]


async def test_defaults_by_kind(client, admin, uid) -> None:
    expected = {
        "anthropic": "https://api.anthropic.com",
        "google": "https://generativelanguage.googleapis.com",
        "cohere": "https://api.cohere.com",
        "openrouter": "https://openrouter.ai/api/v1",
        "groq": "https://api.groq.com/openai/v1",
        "together": "https://api.together.xyz/v1",
        "mistral": "https://api.mistral.ai/v1",
        "fireworks": "https://api.fireworks.ai/inference/v1",
        "ollama": "http://127.0.0.1:11434",
    }
    for kind, url in expected.items():
        r = await client.post(
            "/api/v1/providers", headers=admin, json={"name": uid(kind), "kind": kind}
        )
        assert r.status_code == 201, r.text
        assert r.json()["base_url"] == url
        assert r.json()["api_key_hint"] is None and r.json()["has_api_key"] is False


async def test_duplicates_conflict(client, admin, uid) -> None:
    name = uid("dup")
    body = {"name": name, "kind": "openai", "api_key": "sk-dup-0000000000"}
    assert (await client.post("/api/v1/providers", headers=admin, json=body)).status_code == 201
    r = await client.post("/api/v1/providers", headers=admin, json=body)
    assert r.status_code == 409 and name in r.json()["error"]["message"]
    model = {"provider": name, "upstream_model": "gpt-x", "name": "gpt-x"}
    assert (await client.post("/api/v1/models", headers=admin, json=model)).status_code == 201
    r = await client.post("/api/v1/models", headers=admin, json={**model, "name": "other"})
    assert r.status_code == 409 and "already serves" in r.json()["error"]["message"]
    user = {"id": uid("u")}
    assert (await client.post("/api/v1/users", headers=admin, json=user)).status_code == 201
    assert (await client.post("/api/v1/users", headers=admin, json=user)).status_code == 409


async def test_model_validation(client, admin, uid) -> None:
    prov = uid("mv")
    await client.post("/api/v1/providers", headers=admin, json={"name": prov, "kind": "openai"})
    base = {"provider": prov, "upstream_model": "m1"}
    cases = [
        ({**base, "input_price_per_mtok": -1}, "input_price_per_mtok"),
        ({**base, "purposes": ["painting"]}, "purposes"),
        ({**base, "power_level": "turbo"}, "power_level"),
        ({**base, "provider": "no-such-provider"}, "no provider"),
        ({**base, "context_window": 0}, "context_window"),
    ]
    for body, fragment in cases:
        r = await client.post("/api/v1/models", headers=admin, json=body)
        assert r.status_code == 422, r.text
        assert fragment in r.json()["error"]["message"], r.text
    r = await client.put("/api/v1/routes/chat", headers=admin, json={"model": "nope-model"})
    assert r.status_code == 422 and "POST /api/v1/models" in r.json()["error"]["message"]
    r = await client.put("/api/v1/routes/painting", headers=admin, json={"model": "x"})
    assert r.status_code == 422


async def test_delete_in_use_is_409_naming_users(client, admin, uid, database_url) -> None:
    prov = uid("inuse")
    await client.post("/api/v1/providers", headers=admin, json={"name": prov, "kind": "openai"})
    name = uid("model")
    m = await client.post(
        "/api/v1/models",
        headers=admin,
        json={"provider": prov, "upstream_model": "u", "name": name},
    )
    model_id = m.json()["id"]
    rule = uid("rule")
    r = await client.post(
        "/api/v1/routing-rules",
        headers=admin,
        json={"name": rule, "power_level": "eco", "targets": [name], "priority": 5},
    )
    assert r.status_code == 201, r.text
    r = await client.put("/api/v1/routes/reranking", headers=admin, json={"model": name})
    assert r.status_code == 200
    before = await _count(database_url, "SELECT count(*) FROM config.audit_log")

    for path in (f"/api/v1/providers/{prov}", f"/api/v1/models/{model_id}"):
        r = await client.delete(path, headers=admin)
        assert r.status_code == 409, r.text
        msg = r.json()["error"]["message"]
        assert "route 'reranking'" in msg and f"routing rule '{rule}'" in msg
    r = await client.patch(f"/api/v1/models/{model_id}", headers=admin, json={"name": "renamed"})
    assert r.status_code == 409
    assert await _count(database_url, "SELECT count(*) FROM config.audit_log") == before

    # a second deployment of the same name frees the first one
    other = uid("inuse2")
    await client.post("/api/v1/providers", headers=admin, json={"name": other, "kind": "groq"})
    await client.post(
        "/api/v1/models",
        headers=admin,
        json={"provider": other, "upstream_model": "u", "name": name},
    )
    assert (await client.delete(f"/api/v1/providers/{prov}", headers=admin)).status_code == 204
    assert (await client.get(f"/api/v1/models/{model_id}", headers=admin)).status_code == 404
    await client.delete("/api/v1/routes/reranking", headers=admin)
    gone = await client.get("/api/v1/routes/reranking", headers=admin)
    assert gone.status_code == 404 and "PUT /api/v1/routes/reranking" in gone.text
    assert (await client.get("/api/v1/routes/nonsense", headers=admin)).status_code == 422
    assert (await client.delete(f"/api/v1/routing-rules/{rule}", headers=admin)).status_code == 204


async def test_failed_change_writes_nothing(client, admin, uid, database_url) -> None:
    counts = "SELECT (SELECT count(*) FROM config.audit_log) + (SELECT count(*) FROM config.outbox)"
    before = await _count(database_url, counts)
    r = await client.post("/api/v1/keys", headers=admin, json={"user_id": uid("ghost")})
    assert r.status_code == 422 and "POST /api/v1/users" in r.json()["error"]["message"]
    r = await client.post(
        "/api/v1/keys", headers=admin, json={"user_id": "x", "expires_at": "2001-01-01T00:00:00Z"}
    )
    assert r.status_code == 422
    r = await client.post(
        "/api/v1/routing-rules",
        headers=admin,
        json={"name": uid("r"), "targets": ["ghost-model"], "min_tokens": 10},
    )
    assert r.status_code == 422
    r = await client.post(
        "/api/v1/routing-rules",
        headers=admin,
        json={"name": uid("r"), "targets": ["a"], "min_tokens": 10, "max_tokens": 5},
    )
    assert r.status_code == 422
    assert await _count(database_url, counts) == before


async def test_audit_log_is_append_only(database_url) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM config.audit_log") > 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("UPDATE config.audit_log SET actor = 'mallory'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("DELETE FROM config.audit_log")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("TRUNCATE config.audit_log")
    finally:
        await conn.close()


def test_missing_encryption_key_is_a_startup_error(settings) -> None:
    from turnout_common.errors import ConfigurationError
    from turnout_config_api.app import create_app

    with pytest.raises(ConfigurationError, match="TURNOUT_ENCRYPTION_KEYS"):
        create_app(settings.model_copy(update={"encryption_keys": None}))


async def test_openapi_public_operations_behind_auth(client, admin) -> None:
    # the API reference is public (issue 14: an admin API you can find); what it lists is not
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/api/v1/providers")).status_code == 401
    assert (await client.get("/api/v1/openapi.json")).status_code == 401
    spec = (await client.get("/api/v1/openapi.json", headers=admin)).json()
    assert "/api/v1/providers/{ref}/test" in spec["paths"] and "/api/v1/keys" in spec["paths"]


async def test_patch_provider_key_and_clear(client, admin, uid) -> None:
    name = uid("pk")
    r = await client.post("/api/v1/providers", headers=admin, json={"name": name, "kind": "groq"})
    assert r.json()["has_api_key"] is False
    r = await client.patch(
        f"/api/v1/providers/{name}", headers=admin, json={"api_key": "gsk_abcdefgh1234"}
    )
    assert r.json()["api_key_hint"] == "gsk…1234" and r.json()["has_api_key"] is True
    r = await client.patch(f"/api/v1/providers/{name}", headers=admin, json={"api_key": None})
    assert r.json()["api_key_hint"] is None and r.json()["has_api_key"] is False
    r = await client.patch(f"/api/v1/providers/{name}", headers=admin, json={"enabled": None})
    assert r.status_code == 422
    r = await client.patch(
        f"/api/v1/providers/{name}",
        headers=admin,
        json={"kind": "vllm", "base_url": "http://gpu:8000"},
    )
    assert r.status_code == 422 and "must end with /v1" in r.json()["error"]["message"]
