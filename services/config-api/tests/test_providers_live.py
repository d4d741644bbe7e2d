"""Live probes and discovery against real local HTTP servers shaped like each kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web

from turnout_common.testing.servers import LocalServer
from turnout_common.testing.upstream import FakeOpenAI, start_fake_openai


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeOpenAI, LocalServer]]:
    fake, server = start_fake_openai("probe")
    try:
        yield fake, server
    finally:
        server.stop()


def _cloud_app() -> web.Application:
    """Anthropic-, Gemini- and Cohere-shaped model listings that check each one's auth."""
    app = web.Application()

    async def anthropic(req: web.Request) -> web.Response:
        if req.headers.get("x-api-key") != "sk-ant-good-key-1234" or not req.headers.get(
            "anthropic-version"
        ):
            return web.json_response({"type": "error"}, status=401)
        return web.json_response({"data": [{"id": "claude-3-5-haiku-latest"}, {"id": "claude-x"}]})

    async def gemini(req: web.Request) -> web.Response:
        if req.headers.get("x-goog-api-key") != "AIza-good-key-1234":
            return web.json_response({"error": {}}, status=403)
        return web.json_response({"models": [{"name": "models/gemini-2.0-flash"}]})

    async def cohere(req: web.Request) -> web.Response:
        if req.headers.get("Authorization") != "Bearer co-good-key-1234":
            return web.json_response({"message": "invalid api token"}, status=401)
        return web.json_response({"models": [{"name": "command-r"}, {"name": "embed-v4.0"}]})

    app.router.add_get("/anthropic/v1/models", anthropic)
    app.router.add_get("/google/v1beta/models", gemini)
    app.router.add_get("/cohere/v1/models", cohere)
    return app


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalServer]:
    with LocalServer(_cloud_app) as server:
        yield server


@pytest.mark.parametrize(
    ("kind", "suffix"),
    [("vllm", "/v1"), ("openai_compatible", "/v1"), ("llamacpp", ""), ("ollama", "")],
)
async def test_self_hosted_probes(client, admin, uid, fake, kind, suffix) -> None:
    _, server = fake
    name = uid(kind)
    r = await client.post(
        "/api/v1/providers",
        headers=admin,
        json={"name": name, "kind": kind, "base_url": server.url + suffix},
    )
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/v1/providers/{name}/test", headers=admin)
    assert r.status_code == 200
    result = r.json()
    assert result["ok"] is True and result["status"] == "healthy", result
    assert result["latency_ms"] >= 0 and "reachable" in result["message"]
    assert set(result["models"]) == {"fake-small", "fake-large"}


async def test_probe_reports_auth_failure_and_down(client, admin, uid, fake) -> None:
    upstream, server = fake
    name = uid("keyed")
    await client.post(
        "/api/v1/providers",
        headers=admin,
        json={
            "name": name,
            "kind": "vllm",
            "base_url": server.url + "/v1",
            "api_key": "sk-wrong-0000",
        },
    )
    upstream.behaviour.api_key = "sk-right-1111"
    try:
        result = (await client.post(f"/api/v1/providers/{name}/test", headers=admin)).json()
    finally:
        upstream.behaviour.api_key = None
    assert (
        result["ok"] is False and result["status"] == "auth_failed" and result["http_status"] == 401
    )
    assert "sk-wrong" not in str(result)

    dead = uid("dead")
    await client.post(
        "/api/v1/providers",
        headers=admin,
        json={"name": dead, "kind": "llamacpp", "base_url": "http://127.0.0.1:9"},
    )
    result = (await client.post(f"/api/v1/providers/{dead}/test", headers=admin)).json()
    assert (
        result["ok"] is False and result["status"] == "down" and "cannot reach" in result["message"]
    )


@pytest.mark.parametrize(
    ("kind", "path", "key", "expected"),
    [
        (
            "anthropic",
            "/anthropic",
            "sk-ant-good-key-1234",
            {"claude-3-5-haiku-latest", "claude-x"},
        ),
        ("google", "/google", "AIza-good-key-1234", {"gemini-2.0-flash"}),
        ("cohere", "/cohere", "co-good-key-1234", {"command-r", "embed-v4.0"}),
    ],
)
async def test_cloud_probes_use_the_key(
    client, admin, uid, cloud, kind, path, key, expected
) -> None:
    name = uid(kind)
    body = {"name": name, "kind": kind, "base_url": cloud.url + path, "api_key": key}
    assert (await client.post("/api/v1/providers", headers=admin, json=body)).status_code == 201
    result = (await client.post(f"/api/v1/providers/{name}/test", headers=admin)).json()
    assert result["ok"] is True, result
    assert set(result["models"]) == expected
    await client.patch(
        f"/api/v1/providers/{name}", headers=admin, json={"api_key": "bad-key-000000"}
    )
    result = (await client.post(f"/api/v1/providers/{name}/test", headers=admin)).json()
    assert result["status"] == "auth_failed"


async def test_discover_upserts_priced_and_unpriced(client, admin, uid, cloud) -> None:
    name = uid("disc")
    body = {
        "name": name,
        "kind": "cohere",
        "base_url": cloud.url + "/cohere",
        "api_key": "co-good-key-1234",
    }
    await client.post("/api/v1/providers", headers=admin, json=body)
    r = await client.post(f"/api/v1/providers/{name}/discover", headers=admin)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["priced"] == ["command-r"] and result["disabled_unpriced"] == ["embed-v4.0"]
    listed = (await client.get(f"/api/v1/models?provider={name}", headers=admin)).json()["data"]
    by_name = {m["upstream_model"]: m for m in listed}
    assert by_name["command-r"]["enabled"] is True
    assert by_name["command-r"]["input_price_per_mtok"] == "0.15"
    assert by_name["embed-v4.0"]["enabled"] is False
    assert by_name["embed-v4.0"]["purposes"] == ["embeddings"]
    again = (await client.post(f"/api/v1/providers/{name}/discover", headers=admin)).json()
    assert again["added"] == [] and sorted(again["already_present"]) == ["command-r", "embed-v4.0"]


async def test_discover_fails_clearly_when_unreachable(client, admin, uid) -> None:
    name = uid("nodisc")
    await client.post(
        "/api/v1/providers",
        headers=admin,
        json={"name": name, "kind": "vllm", "base_url": "http://127.0.0.1:9/v1"},
    )
    r = await client.post(f"/api/v1/providers/{name}/discover", headers=admin)
    assert r.status_code == 502 and "cannot list models" in r.json()["error"]["message"]


async def test_byok_put_get_test_delete(client, admin, uid, fake, config_events) -> None:
    upstream, server = fake
    prov = uid("byokp")
    await client.post(
        "/api/v1/providers",
        headers=admin,
        json={"name": prov, "kind": "openai_compatible", "base_url": server.url + "/v1"},
    )
    user = uid("byoku")
    await client.post("/api/v1/users", headers=admin, json={"id": user})
    secret = "sk-users-own-key-98765"
    r = await client.put(
        f"/api/v1/users/{user}/provider-keys/{prov}", headers=admin, json={"api_key": secret}
    )
    assert r.status_code == 200, r.text
    assert r.json()["api_key_hint"] == "sk-…8765" and secret not in r.text
    listed = (await client.get(f"/api/v1/users/{user}/provider-keys", headers=admin)).json()["data"]
    assert [b["provider_name"] for b in listed] == [prov]
    upstream.behaviour.api_key = secret
    try:
        result = (
            await client.post(f"/api/v1/users/{user}/provider-keys/{prov}/test", headers=admin)
        ).json()
    finally:
        upstream.behaviour.api_key = None
    assert result["ok"] is True, result
    assert (
        await client.delete(f"/api/v1/users/{user}/provider-keys/{prov}", headers=admin)
    ).status_code == 204
    assert (
        await client.get(f"/api/v1/users/{user}/provider-keys/{prov}", headers=admin)
    ).status_code == 404
    provider_id = (await client.get(f"/api/v1/providers/{prov}", headers=admin)).json()["id"]
    entity_id = f"{user}:{provider_id}"
    events = await config_events(
        lambda evs: any(e.entity_id == entity_id and e.op == "delete" for e in evs)
    )
    mine = [e for e in events if e.entity_id == entity_id]
    assert [e.op for e in mine] == ["upsert", "delete"] and mine[1].data is None
    data = mine[0].data
    assert data is not None and set(data) == {
        "user_id",
        "provider_id",
        "api_key_encrypted",
        "api_key_hint",
    }
    assert secret not in data["api_key_encrypted"]
