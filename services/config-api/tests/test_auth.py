"""Auth matrix: no/bad token 401, user key 403 on writes (own reads only), admins OK."""

from __future__ import annotations

import pytest

WRITES = [
    ("POST", "/api/v1/providers", {"name": "x", "kind": "openai"}),
    ("PATCH", "/api/v1/providers/x", {"enabled": False}),
    ("DELETE", "/api/v1/providers/x", None),
    ("POST", "/api/v1/providers/x/test", None),
    ("POST", "/api/v1/providers/x/discover", None),
    ("POST", "/api/v1/models", {"provider": "x", "upstream_model": "m"}),
    ("PUT", "/api/v1/routes/chat", {"model": "m"}),
    ("POST", "/api/v1/routing-rules", {"name": "r", "targets": ["m"]}),
    ("PUT", "/api/v1/tiers/free", {"rank": 0}),
    ("POST", "/api/v1/users", {"id": "mallory"}),
    # POST/DELETE /keys: a user manages their own keys, others' answer 404 (test_self_service)
    # PUT/DELETE/test of provider keys: their own, on open providers (test_byok_self_service)
    ("POST", "/api/v1/admin-tokens", {"name": "root"}),
]
ADMIN_READS = [
    "/api/v1/providers",
    "/api/v1/models",
    "/api/v1/routes",
    "/api/v1/routing-rules",
    "/api/v1/tiers",
    "/api/v1/users",
    "/api/v1/audit",
    "/api/v1/snapshot",
    "/api/v1/admin-tokens",
]  # /lab/templates and /catalog take any key (test_byok_self_service)


@pytest.fixture(scope="module")
async def user_key(client, admin) -> tuple[str, str]:
    r = await client.post("/api/v1/users", headers=admin, json={"id": "auth-bob"})
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/keys", headers=admin, json={"user_id": "auth-bob"})
    return r.json()["key"], r.json()["id"]


async def test_public_ops_endpoints(client) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": True, "outbox_relay": True}
    assert (await client.get("/metrics")).status_code == 200


async def test_metrics_label_requests_by_the_whole_route_template(client, admin) -> None:
    await client.get("/api/v1/providers/no-such-provider", headers=admin)
    text = (await client.get("/metrics")).text
    assert 'route="/api/v1/providers/{ref}"' in text, text


@pytest.mark.parametrize("path", ADMIN_READS)
async def test_no_or_bad_token_is_401(client, path) -> None:
    r = await client.get(path)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = await client.get(path, headers={"Authorization": "Bearer not-a-real-token"})
    assert r.status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
async def test_user_key_cannot_write(client, user_key, method, path, body) -> None:
    headers = {"Authorization": f"Bearer {user_key[0]}"}
    r = await client.request(method, path, headers=headers, json=body)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["type"] == "permission_error"
    assert (await client.request(method, path, json=body)).status_code == 401


@pytest.mark.parametrize("path", ADMIN_READS)
async def test_user_key_cannot_read_admin_data(client, user_key, admin, path) -> None:
    assert (
        await client.get(path, headers={"Authorization": f"Bearer {user_key[0]}"})
    ).status_code == 403
    assert (await client.get(path, headers=admin)).status_code == 200


async def test_user_reads_only_its_own(client, admin, user_key) -> None:
    key, key_id = user_key
    mine = {"Authorization": f"Bearer {key}"}
    await client.post("/api/v1/users", headers=admin, json={"id": "auth-carol"})
    other = (
        await client.post("/api/v1/keys", headers=admin, json={"user_id": "auth-carol"})
    ).json()
    listed = (await client.get("/api/v1/keys?user_id=auth-carol", headers=mine)).json()
    assert [k["id"] for k in listed["data"]] == [key_id]  # the filter cannot widen it
    assert (await client.get(f"/api/v1/keys/{key_id}", headers=mine)).status_code == 200
    # another user's key answers like an unknown one: 404, so ids cannot be probed
    assert (await client.get(f"/api/v1/keys/{other['id']}", headers=mine)).status_code == 404
    assert (await client.get("/api/v1/keys/no-such-key", headers=mine)).status_code == 404
    assert (
        await client.get("/api/v1/users/auth-bob/provider-keys", headers=mine)
    ).status_code == 200
    r = await client.get("/api/v1/users/auth-carol/provider-keys", headers=mine)
    assert r.status_code == 404


async def test_minted_admin_token(client, admin) -> None:
    r = await client.post("/api/v1/admin-tokens", headers=admin, json={"name": "ci-bot"})
    assert r.status_code == 201
    minted = r.json()
    token = {"Authorization": f"Bearer {minted['token']}"}
    listed = (await client.get("/api/v1/admin-tokens", headers=admin)).json()["data"]
    assert all("token" not in t and "token_hash" not in t for t in listed)
    # the minted token is a full admin: it can mint more and change config
    r = await client.put("/api/v1/tiers/auth-tier", headers=token, json={"rank": 7})
    assert r.status_code == 200
    audit = (
        await client.get("/api/v1/audit?entity=tier&entity_id=auth-tier", headers=admin)
    ).json()
    assert audit["data"][0]["actor"] == "admin-token:ci-bot"
    assert (
        await client.delete(f"/api/v1/admin-tokens/{minted['id']}", headers=token)
    ).status_code == 200
    assert (await client.get("/api/v1/tiers", headers=token)).status_code == 401


async def test_oidc_admin_and_non_admin(client, jwt_token) -> None:
    admin_jwt = {"Authorization": f"Bearer {jwt_token(['admin', 'dev'], sub='sso-admin')}"}
    r = await client.put("/api/v1/tiers/oidc-tier", headers=admin_jwt, json={"rank": 5})
    assert r.status_code == 200, r.text
    reader = {"Authorization": f"Bearer {jwt_token(['viewer'])}"}
    assert (await client.get("/api/v1/providers", headers=reader)).status_code == 403
    r = await client.put("/api/v1/tiers/oidc-tier", headers=reader, json={"rank": 6})
    assert r.status_code == 403


async def test_oidc_rejects_bad_tokens(client, jwt_token) -> None:
    for bad in (
        jwt_token(["admin"], iss="https://evil.example"),
        jwt_token(["admin"], aud="someone-else"),
        jwt_token(["admin"], exp=1000),
        jwt_token(["admin"])[:-4] + "AAAA",
    ):
        r = await client.get("/api/v1/tiers", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, bad
