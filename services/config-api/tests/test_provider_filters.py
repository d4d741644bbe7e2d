"""Issue 16 item 7: provider list filters and the provider kinds (seeds 000/002/004)."""

from __future__ import annotations

from collections.abc import Callable

import httpx


async def test_filters_combine(
    client: httpx.AsyncClient, admin: dict[str, str], uid: Callable[[str], str]
) -> None:
    a, b, c = uid("flt-a"), uid("flt-b"), uid("flt-c")
    for name, kind, enabled in ((a, "vllm", True), (b, "groq", True), (c, "vllm", False)):
        body = {"name": name, "kind": kind, "enabled": enabled}
        if kind == "vllm":
            body["base_url"] = "http://127.0.0.1:9/v1"
        r = await client.post("/api/v1/providers", json=body, headers=admin)
        assert r.status_code == 201, r.text
    r = await client.post("/api/v1/models", headers=admin, json={
        "provider": a, "upstream_model": uid("m"), "capabilities": {"tools": True}})  # fmt: skip
    assert r.status_code == 201, r.text

    async def names(**params: str) -> set[str]:
        r = await client.get("/api/v1/providers", params={"limit": "500", **params}, headers=admin)
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["total"] >= len(page["data"])
        return {p["name"] for p in page["data"]} & {a, b, c}

    assert await names() == {a, b, c}
    assert await names(kind="vllm") == {a, c}
    assert await names(kind="vllm", enabled_only="true") == {a}
    assert await names(capability="tools") == {a}
    assert await names(health="unknown") == {a, b, c}  # never probed here
    assert await names(health="down") == set()
    bad = await client.get("/api/v1/providers", params={"kind": "nope"}, headers=admin)
    assert bad.status_code == 422


async def test_kinds(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await client.get("/api/v1/providers/kinds", headers=admin)
    assert r.status_code == 200, r.text
    kinds = {k["kind"]: k for k in r.json()["data"]}
    assert len(kinds) == 13
    assert kinds["openai"]["default_base_url"] == "https://api.openai.com/v1"
    assert kinds["anthropic"]["auth"] == "x-api-key header" and kinds["anthropic"]["byok_capable"]
    assert kinds["vllm"]["self_hosted"] and not kinds["vllm"]["byok_capable"]
    assert (await client.get("/api/v1/providers/kinds")).status_code == 401
