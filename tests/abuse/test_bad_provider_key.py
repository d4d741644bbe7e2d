"""Issue 21 item 7: a provider key that cannot be an HTTP header.

Before: a key with CR/LF or non-ASCII characters was accepted, and every request to that
provider then failed with 500 and skipped the healthy fallback. Now config-api refuses such
keys (and ``user:password@`` in ``base_url``), and any error building an upstream request is
a failed attempt that falls back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from turnout_common.crypto import KeyRing

from .conftest import Tenant, wait_for


@pytest.mark.parametrize("key", ["sk-abc\r\nX-Evil: 1", "sk-clé-ü", "sk abc", "sk-\tabc"])
def test_config_api_refuses_keys_that_cannot_be_headers(system: Any, key: str) -> None:
    body = {"name": f"bad-{uuid.uuid4().hex[:6]}", "kind": "openai", "api_key": key}
    r = httpx.post(system.url("config") + "/api/v1/providers", json=body, headers=system.admin)
    assert r.status_code == 422, r.text
    assert key not in r.text and "clé" not in r.text  # never echoed


def test_config_api_refuses_credentials_in_base_url(system: Any) -> None:
    body = {"name": f"bad-{uuid.uuid4().hex[:6]}", "kind": "vllm",
            "base_url": "http://user:hunter2@gpu-box:8000/v1"}  # fmt: skip
    r = httpx.post(system.url("config") + "/api/v1/providers", json=body, headers=system.admin)
    assert r.status_code == 422, r.text
    assert "hunter2" not in r.text
    assert r.json()["error"]["param"] == "base_url"


async def _store_key(dsn: str, provider_id: str, ciphertext: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE config.providers SET api_key_encrypted = $1 WHERE id = $2",
            ciphertext, provider_id,
        )  # fmt: skip
    finally:
        await conn.close()


def test_a_stored_bad_key_falls_back(system: Any, tenant: Callable[..., Tenant]) -> None:
    """A key stored before validation existed: the request is served by the fallback."""
    t = tenant()
    cfg, h = system.url("config") + "/api/v1", system.admin
    good = t.model  # the tenant's provider, keyless and healthy; the broken one goes first
    r = httpx.post(cfg + "/providers", headers=h, json={
        "name": f"{good}-broken", "kind": "vllm", "priority": -100,
        "base_url": system.url("router") + "/v1", "api_key": "placeholder-key"})  # fmt: skip
    assert r.status_code == 201, r.text
    broken = r.json()["id"]
    ring = KeyRing(system.env["TURNOUT_ENCRYPTION_KEYS"].split(","))
    asyncio.run(_store_key(system.env["TURNOUT_DATABASE_URL"], broken,
                           ring.encrypt("sk-old\r\nX-Injected: 1")))  # fmt: skip
    # any change publishes the provider's row again (with the stored key) to the router
    assert httpx.patch(cfg + f"/providers/{broken}", headers=h,
                       json={"priority": -101}).status_code == 200  # fmt: skip
    r = httpx.post(
        cfg + "/models",
        headers=h,
        json={"provider": broken, "upstream_model": "m", "name": good, "purposes": ["chat"]},
    )
    assert r.status_code == 201, r.text

    def both_deployments() -> bool:
        r = t.chat()
        return r.status_code == 200 and r.headers["x-turnout-fallbacks"] == "1"

    wait_for(both_deployments)
    r = t.chat()
    assert r.status_code == 200, r.text
    assert r.headers["x-turnout-provider"] == good
