"""Bad input gets a 4xx, never a 5xx: every write operation of the OpenAPI spec is fed
malformed bodies (a bounded, deterministic stand-in for schemathesis)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

BAD_VALUES: list[Any] = [
    None,
    -1,
    2**63,
    1e308,
    "",
    "x" * 5000,
    "nul\u0000byte",
    [],
    {},
    True,
    "-5",
    "ftp://x",
    {"nested": "\u0000"},
]
BAD_BODIES: list[bytes] = [b"", b"not json", b"[]", b'"string"', b"{", b"null", b"{}"]


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    ops = []
    schemas = spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody")
            if method not in ("post", "put", "patch") or body is None:
                continue
            ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            ops.append((method.upper(), path, list(schemas[ref].get("properties", {}))))
    return ops


async def test_malformed_input_never_5xx(client, admin, uid) -> None:
    spec = (await client.get("/api/v1/openapi.json", headers=admin)).json()
    ops = _operations(spec)
    assert len(ops) >= 12
    prov = uid("fz")
    await client.post("/api/v1/providers", headers=admin, json={"name": prov, "kind": "openai"})
    user = uid("fzu")
    await client.post("/api/v1/users", headers=admin, json={"id": user})
    sent = 0
    for method, template, fields in ops:
        path = re.sub(r"\{(ref|provider)\}", prov, template)
        path = path.replace("{user_id}", user).replace("{purpose}", "chat")
        path = re.sub(r"\{[a-z_]+\}", "fz-missing", path)
        for raw in BAD_BODIES:
            r = await client.request(method, path, headers=admin, content=raw)
            sent += 1
            assert r.status_code < 500, (method, path, raw, r.text)
        for field in fields:
            for value in BAD_VALUES:
                body = json.dumps({field: value}).encode()
                r = await client.request(method, path, headers=admin, content=body)
                sent += 1
                assert r.status_code < 500, (method, path, field, value, r.text)
    assert sent > 500


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/models?limit=-1",
        "/api/v1/audit?since=yesterday",
        "/api/v1/models?enabled=maybe",
        "/api/v1/providers?offset=-3",
    ],
)
async def test_bad_query_is_422(client, admin, path) -> None:
    assert (await client.get(path, headers=admin)).status_code == 422
