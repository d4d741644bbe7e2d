"""SPEC §5, the config-api half, verbatim; then the events, the snapshot and secret hygiene."""

from __future__ import annotations

import json
import logging

import asyncpg
import httpx

from turnout_common.crypto import hash_virtual_key
from turnout_common.events import ConfigEvent

GPU_KEY = "sk-local-12345678"
OPENAI_KEY = "sk-openai-live-secret-abcdefghijklmnop"


async def post(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], raw: str
) -> httpx.Response:
    """Send a body the way curl -d does (raw JSON, no content type)."""
    curl = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    return await client.post(path, headers=curl, content=raw.encode())


async def test_walkthrough(client, admin, config_events, settings, database_url, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    h = admin
    r = await post(
        client,
        "/api/v1/providers",
        h,
        '{"name":"gpu-box","kind":"vllm",'
        '"base_url":"http://127.0.0.1:8000/v1","api_key":"sk-local-12345678"}',
    )
    assert r.status_code == 201, r.text
    gpu = r.json()
    assert gpu["name"] == "gpu-box" and gpu["kind"] == "vllm"
    assert gpu["api_key_hint"] == "sk-…5678"
    assert "api_key" not in gpu and "api_key_encrypted" not in gpu

    r = await post(
        client,
        "/api/v1/providers",
        h,
        json.dumps({"name": "openai", "kind": "openai", "api_key": OPENAI_KEY}),
    )
    assert r.status_code == 201, r.text
    openai = r.json()
    assert openai["base_url"] == "https://api.openai.com/v1"

    r = await post(
        client,
        "/api/v1/models",
        h,
        '{"provider":"gpu-box",'
        '"upstream_model":"meta-llama/Llama-3.1-8B-Instruct","name":"llama-8b",'
        '"purposes":["chat"],"context_window":8192,"input_price_per_mtok":0.10,'
        '"output_price_per_mtok":0.20,"fallbacks":["gpt-4o-mini"]}',
    )
    assert r.status_code == 201, r.text
    llama = r.json()
    assert llama["provider_id"] == gpu["id"] and llama["input_price_per_mtok"] == "0.1"
    assert llama["fallbacks"] == ["gpt-4o-mini"]

    r = await post(
        client,
        "/api/v1/models",
        h,
        '{"provider":"openai",'
        '"upstream_model":"gpt-4o-mini","name":"gpt-4o-mini","purposes":["chat"],'
        '"input_price_per_mtok":0.15,"output_price_per_mtok":0.60}',
    )
    assert r.status_code == 201, r.text
    mini = r.json()

    r = await client.put(
        "/api/v1/routes/chat",
        headers={**h, "Content-Type": "application/x-www-form-urlencoded"},
        content=b'{"model":"llama-8b","fallbacks":["gpt-4o-mini"]}',
    )
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "llama-8b"

    r = await post(
        client, "/api/v1/users", h, '{"id":"alice","tier":"professional","monthly_budget_usd":5}'
    )
    assert r.status_code == 201, r.text
    assert r.json()["monthly_budget_usd"] == "5"

    r = await post(client, "/api/v1/keys", h, '{"user_id":"alice","name":"laptop"}')
    assert r.status_code == 201, r.text
    created = r.json()
    key = created["key"]
    assert key.startswith("tk-") and created["key_hint"].endswith(key[-4:])

    # the secret is shown once: reading the key back never shows it
    again = (await client.get(f"/api/v1/keys/{created['id']}", headers=h)).json()
    assert "key" not in again and again["key_hint"] == created["key_hint"]

    # the user's own key reads its own keys
    mine = await client.get("/api/v1/keys", headers={"Authorization": f"Bearer {key}"})
    assert mine.status_code == 200
    assert [k["id"] for k in mine.json()["data"]] == [created["id"]]

    # --- events: each change once, in order, exact shapes ----------------------------------
    ids = {gpu["id"], openai["id"], llama["id"], mini["id"], "chat", "alice", created["id"]}

    def ours(events: list[ConfigEvent]) -> list[ConfigEvent]:
        # the topic is shared with other tests (which may reuse ids like "alice"): ours start
        # at this test's first provider, whose id is a fresh UUID
        starts = [i for i, e in enumerate(events) if e.entity_id == gpu["id"]]
        return [e for e in events[starts[0] :] if e.entity_id in ids] if starts else []

    def seen_all(events: list[ConfigEvent]) -> bool:
        return ids <= {e.entity_id for e in ours(events)}

    mine_events = ours(await config_events(seen_all))
    revisions = [e.revision for e in mine_events]
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)
    assert [e.entity for e in mine_events] == [
        "provider",
        "provider",
        "model",
        "model",
        "route",
        "user",
        "virtual_key",
    ]
    by_id = {e.entity_id: e for e in mine_events}
    p = by_id[gpu["id"]].data
    assert p is not None and set(p) == {
        "id",
        "name",
        "kind",
        "base_url",
        "enabled",
        "api_key_encrypted",
        "api_key_hint",
        "rpm_limit",
        "tpm_limit",
        "priority",
        "weight",
        "min_tier",
        "is_system",
        "byok_enabled",
        "timeout_s",
        "metadata",
    }
    assert p["api_key_encrypted"].startswith("gAAAAA") and p["api_key_hint"] == "sk-…5678"
    m = by_id[llama["id"]].data
    assert m is not None and set(m) == {
        "id",
        "name",
        "provider_id",
        "upstream_model",
        "purposes",
        "context_window",
        "max_output_tokens",
        "capabilities",
        "input_price_per_mtok",
        "output_price_per_mtok",
        "cached_price_per_mtok",
        "power_level",
        "min_tier",
        "enabled",
        "deprecated",
        "priority",
        "weight",
        "routing_strategy",
        "fallbacks",
        "aliases",
    }
    assert m["input_price_per_mtok"] == "0.1" and m["output_price_per_mtok"] == "0.2"
    # only declared capabilities are stored (an undeclared one passes through)
    assert m["capabilities"] and set(m["capabilities"]) <= {
        "streaming",
        "tools",
        "vision",
        "json_mode",
    }
    assert by_id["chat"].data == {
        "purpose": "chat",
        "model": "llama-8b",
        "fallbacks": ["gpt-4o-mini"],
    }
    assert by_id["alice"].data == {
        "id": "alice",
        "tier": "professional",
        "monthly_budget_usd": "5",
        "enabled": True,
    }
    vk = by_id[created["id"]].data
    assert vk is not None and vk["key_hash"] == hash_virtual_key(key) and vk["revoked"] is False
    assert set(vk) == {
        "id",
        "user_id",
        "name",
        "key_hash",
        "key_hint",
        "allowed_models",
        "rpm_limit",
        "tpm_limit",
        "budget_usd",
        "expires_at",
        "revoked",
    }
    # --- snapshot: same shapes, current revision ---------------------------------------------
    snap = (await client.get("/api/v1/snapshot", headers=h)).json()
    assert snap["revision"] >= max(e.revision for e in mine_events)
    entries = {(e["entity"], e["entity_id"]): e for e in snap["entities"]}
    for e in mine_events:
        assert entries[(e.entity, e.entity_id)]["data"] == e.data
        assert entries[(e.entity, e.entity_id)]["revision"] == e.revision
    tiers = {e["entity_id"]: e["data"] for e in snap["entities"] if e["entity"] == "tier"}
    assert {"free", "starter", "professional", "enterprise"} <= set(tiers)
    assert tiers["enterprise"] == {
        "name": "enterprise",
        "rank": 3,
        "monthly_credits_usd": "500",
        "rpm_limit": 3000,
        "tpm_limit": 10000000,
        "byok_fee_pct": "0",
        "lab_monthly_quota": 10000,
    }

    # --- the key is revoked by DELETE, and the router hears it --------------------------------
    r = await client.delete(f"/api/v1/keys/{created['id']}", headers=h)
    assert r.status_code == 200 and r.json()["revoked"] is True
    denied = await client.get("/api/v1/keys", headers={"Authorization": f"Bearer {key}"})
    assert denied.status_code == 401
    events = await config_events(
        lambda evs: any(e.entity_id == created["id"] and e.data and e.data["revoked"] for e in evs)
    )

    # --- no plaintext secret anywhere: responses, events, audit rows, any table ---------------
    secrets = [GPU_KEY, OPENAI_KEY, key]
    blob = json.dumps([e.model_dump(mode="json") for e in events]) + json.dumps(snap)
    audit = (await client.get("/api/v1/audit?limit=500", headers=h)).text
    conn = await asyncpg.connect(database_url)
    try:
        dump = await conn.fetchval(
            "SELECT string_agg(t::text, ' ') FROM (SELECT row_to_json(x)::text AS t FROM ("
            " SELECT * FROM config.providers) x UNION ALL SELECT row_to_json(x)::text FROM ("
            " SELECT * FROM config.byok_keys) x UNION ALL SELECT row_to_json(x)::text FROM ("
            " SELECT * FROM config.virtual_keys) x UNION ALL SELECT row_to_json(x)::text FROM ("
            " SELECT * FROM config.audit_log) x UNION ALL SELECT encode(payload, 'escape') FROM"
            " config.outbox) y"
        )
    finally:
        await conn.close()
    for secret in secrets:
        assert secret not in blob
        assert secret not in audit
        assert secret not in dump
    assert "gAAAAA" not in audit  # ciphertext is masked in the audit log too
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged and not any(secret in logged for secret in secrets)
