"""Issue 21 item 4 against the running stack: free-form fields are capped, and each
service's outbox shows its head (the relay's own behaviour is in
libs/common/tests/test_outbox.py, with a row the broker refuses).

Before: a provider with 20 MB of metadata was accepted (201) and the relay then looped on
``MessageSizeTooLargeError`` forever while /readyz said it was fine.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest


@pytest.mark.parametrize("size", [20 << 20, 70 * 1024])
def test_oversized_metadata_is_refused(system: Any, size: int) -> None:
    body = {"name": f"meta-{uuid.uuid4().hex[:6]}", "kind": "openai",
            "metadata": {"blob": "x" * size}}  # fmt: skip
    r = httpx.post(system.url("config") + "/api/v1/providers", json=body,
                   headers=system.admin, timeout=60)  # fmt: skip
    assert r.status_code == 422, r.text[:300]
    assert "64 KB" in r.text


@pytest.mark.parametrize("service", ["config", "metering", "health"])
def test_every_outbox_shows_its_head_to_admins(system: Any, service: str) -> None:
    url = system.url(service) + "/api/v1/outbox"
    r = httpx.get(url, headers=system.admin)
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["stuck"] is False and state["pending"] >= 0
    assert httpx.get(url).status_code == 401
    r = httpx.post(url + "/set-aside", json={"id": 2**40, "reason": "nothing"},
                   headers=system.admin)  # fmt: skip
    assert r.status_code == 409
    ready = httpx.get(system.url(service) + "/readyz").json()
    assert ready["checks"]["outbox_relay"] is True
