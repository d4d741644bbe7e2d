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


async def test_search_sort_and_model_counts(
    client: httpx.AsyncClient, admin: dict[str, str], uid: Callable[[str], str]
) -> None:
    """Issue 17: the console's provider table searches, sorts and counts models on the server."""
    tag = uid("srt").replace("-", "")
    names = [f"{tag}-b", f"{tag}-a", f"{tag}-c_x"]
    for i, name in enumerate(names):
        body = {"name": name, "kind": "vllm", "base_url": f"http://127.0.0.{i + 1}:9/v1"}
        r = await client.post("/api/v1/providers", json=body, headers=admin)
        assert r.status_code == 201, r.text
    for i in range(2):
        r = await client.post(
            "/api/v1/models", headers=admin, json={"provider": names[2], "upstream_model": f"m{i}"}
        )
        assert r.status_code == 201, r.text

    async def listed(**params: str) -> list[dict[str, object]]:
        r = await client.get("/api/v1/providers", params={"limit": "500", **params}, headers=admin)
        assert r.status_code == 200, r.text
        return [p for p in r.json()["data"] if str(p["name"]).startswith(tag)]

    by_name = await listed(search=tag, sort="name")
    assert [p["name"] for p in by_name] == [f"{tag}-a", f"{tag}-b", f"{tag}-c_x"]
    assert [p["model_count"] for p in by_name] == [0, 0, 2]
    descending = [p["name"] for p in await listed(search=tag, sort="-name")]
    assert descending == [f"{tag}-c_x", f"{tag}-b", f"{tag}-a"]
    assert next(p["name"] for p in await listed(search=tag, sort="-models")) == f"{tag}-c_x"
    # the search is a literal substring of name, kind or base URL: "_" matches only "_"
    assert [p["name"] for p in await listed(search=f"{tag}-c_")] == [f"{tag}-c_x"]
    assert await listed(search=f"{tag}-_") == []
    assert {p["name"] for p in await listed(search="127.0.0.2:9/V1")} == {names[1]}
    r = await client.get("/api/v1/providers", params={"search": tag.upper()}, headers=admin)
    assert r.json()["total"] == 3
    bad = await client.get("/api/v1/providers", params={"sort": "name; drop"}, headers=admin)
    assert bad.status_code == 422
