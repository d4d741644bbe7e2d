"""Issue 14 item 6: an admin API you can find, offline.

Before: config-api served no /docs at all, and the other services' pages loaded Swagger UI
from a CDN (blank without internet).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest


@pytest.mark.parametrize("service", ["config", "metering", "health"])
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_use_only_local_assets(system: Any, service: str, page: str) -> None:
    base = system.url(service)
    r = httpx.get(base + page)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    refs = re.findall(r"""(?:src|href)=["']([^"']+)""", r.text)
    refs += re.findall(r"""url:\s*['"]([^'"]+)""", r.text)
    assert refs, r.text
    for ref in refs:
        assert not ref.startswith(("http:", "https:", "//")), ref
        if ref.startswith("/"):
            assert httpx.get(base + ref).status_code == 200, ref
    assert "cdn" not in r.text.lower() and "fonts.googleapis" not in r.text


@pytest.mark.parametrize("service", ["config", "metering", "health"])
def test_openapi_has_bearer_auth_and_descriptions(system: Any, service: str) -> None:
    doc = httpx.get(system.url(service) + "/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["security"] == [{"bearer": []}]
    assert doc["info"]["description"]
    ops = [op for path in doc["paths"].values() for op in path.values()]
    assert ops and all(op.get("description") for op in ops)
    if service == "config":
        assert "/api/v1/providers" in doc["paths"]
