"""Issue 16 item 1 (my keys): a user creates and revokes their own virtual keys, within their
tier's ``max_keys``, unless an admin turned self-service off; other users' keys answer 404."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import FastAPI


async def test_my_keys(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], uid: Callable[[str], str]
) -> None:
    tier, me, other = uid("ss-tier"), uid("ss-me"), uid("ss-other")
    r = await client.put(f"/api/v1/tiers/{tier}", json={"rank": 1, "max_keys": 2}, headers=admin)
    assert r.status_code == 200 and r.json()["max_keys"] == 2, r.text
    for user in (me, other):
        r = await client.post("/api/v1/users", json={"id": user, "tier": tier}, headers=admin)
        assert r.status_code == 201, r.text
    first = (await client.post("/api/v1/keys", json={"user_id": me}, headers=admin)).json()
    theirs = (await client.post("/api/v1/keys", json={"user_id": other}, headers=admin)).json()
    mine = {"Authorization": f"Bearer {first['key']}"}

    r = await client.post("/api/v1/keys", json={"user_id": me, "name": "laptop"}, headers=mine)
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["key"].startswith("tk-") and second["user_id"] == me
    # a third active key passes the tier's max_keys of 2
    r = await client.post("/api/v1/keys", json={"user_id": me}, headers=mine)
    assert r.status_code == 409 and r.json()["error"]["code"] == "key_limit_reached", r.text
    # revoking one of mine frees a place
    r = await client.delete(f"/api/v1/keys/{second['id']}", headers=mine)
    assert r.status_code == 200 and r.json()["revoked"] is True
    r = await client.post("/api/v1/keys", json={"user_id": me}, headers=mine)
    assert r.status_code == 201, r.text
    # another user's keys: 404 to create, read or revoke, like unknown ones
    r = await client.post("/api/v1/keys", json={"user_id": other}, headers=mine)
    assert r.status_code == 404
    assert (await client.delete(f"/api/v1/keys/{theirs['id']}", headers=mine)).status_code == 404
    assert (await client.get(f"/api/v1/keys/{theirs['id']}", headers=mine)).status_code == 404
    # admins are not held to max_keys
    r = await client.post("/api/v1/keys", json={"user_id": me}, headers=admin)
    assert r.status_code == 201
    # an admin can turn self-service off
    settings = app.state.config_api.settings
    settings.self_service_keys = False
    try:
        r = await client.post("/api/v1/keys", json={"user_id": me}, headers=mine)
        assert r.status_code == 403 and r.json()["error"]["code"] == "self_service_disabled"
    finally:
        settings.self_service_keys = True
