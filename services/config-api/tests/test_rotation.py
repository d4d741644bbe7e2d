"""Key rotation: secrets under an old key open with the new key only afterwards."""

from __future__ import annotations

import asyncpg

from turnout_common.crypto import KeyRing, generate_key
from turnout_config_api.rotation import rotate_all


async def _secrets(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT api_key_encrypted FROM config.providers WHERE api_key_encrypted IS NOT NULL"
            " UNION ALL SELECT api_key_encrypted FROM config.byok_keys"
        )
    finally:
        await conn.close()
    return [r[0] for r in rows]


async def test_rotate_all(client, admin, uid, database_url, old_key, config_events) -> None:
    prov = uid("rot")
    secret = "sk-rotate-me-please-4242"
    r = await client.post(
        "/api/v1/providers", headers=admin, json={"name": prov, "kind": "openai", "api_key": secret}
    )
    provider_id = r.json()["id"]
    user = uid("rotu")
    await client.post("/api/v1/users", headers=admin, json={"id": user})
    byok_secret = "sk-byok-rotate-7777"
    await client.put(
        f"/api/v1/users/{user}/provider-keys/{prov}", headers=admin, json={"api_key": byok_secret}
    )
    new_key = generate_key()
    only_new = KeyRing([new_key])
    before = await _secrets(database_url)
    assert before and not any(only_new.is_current(t) for t in before)

    rotated = await rotate_all(database_url, KeyRing([new_key, old_key]))
    try:
        assert rotated == len(before)
        after = await _secrets(database_url)
        assert all(only_new.is_current(t) for t in after)
        plain = {only_new.decrypt(t) for t in after}
        assert {secret, byok_secret} <= plain
        assert await rotate_all(database_url, KeyRing([new_key, old_key])) == 0  # idempotent

        # consumers get the new ciphertext as a newer revision of the same entity
        events = await config_events(lambda evs: sum(e.entity_id == provider_id for e in evs) >= 2)
        mine = [e for e in events if e.entity_id == provider_id]
        assert mine[-1].revision > mine[0].revision and mine[-1].data is not None
        assert only_new.decrypt(mine[-1].data["api_key_encrypted"]) == secret
        audit = (
            await client.get(
                f"/api/v1/audit?entity_id={provider_id}&action=rotate_key", headers=admin
            )
        ).json()
        assert audit["total"] == 1 and audit["data"][0]["actor"] == "system:key-rotation"
    finally:
        # put everything back under the app's key so later tests can still decrypt
        await rotate_all(database_url, KeyRing([old_key, new_key]))
    assert all(KeyRing([old_key]).is_current(t) for t in await _secrets(database_url))
