"""Every console page renders on a gateway with nothing in it (a system of its own): the
empty states say so, nothing fails. Many rows are covered by the other console tests (the
shared system) and, at 10,000 rows and a million usage rows, by bench/console_render.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from tests.console.test_console_http import sign_in

from turnout_common.testing.waiting import wait_for

ADMIN_PAGES = {
    "/providers": "No providers yet.",
    "/models": "<h1>Models</h1>",
    "/routes": "Not set.",
    "/rules": "No routing rules.",
    "/users": "No users yet.",
    "/tiers": "<h1>Tiers</h1>",
    "/health": "The health-worker has no providers to watch yet.",
    "/usage": "No usage in this range.",
    "/audit": "<h1>Audit log</h1>",
    "/lab": "No lab runs yet.",
    "/catalog": "No model matches.",
}
USER_PAGES = {
    "/me": "No requests yet with this key.",
    "/catalog": "No model matches.",
    "/me/provider-keys": "No provider is open to your own keys",
    "/lab": "No lab runs yet.",
}


@pytest.fixture(scope="module")
def empty(start_own_system: Callable[..., AbstractContextManager[Any]]) -> Iterator[Any]:
    with start_own_system("console_empty") as system:
        yield system


def test_every_page_renders_with_nothing_in_the_gateway(empty: Any) -> None:
    base = empty.url("console")
    admin = sign_in(base, empty.info["admin_token"])
    for path, says in ADMIN_PAGES.items():
        page = admin.get(path)
        assert page.status_code == 200, (path, page.text[:300])
        assert says in page.text, (path, page.text[:2000])
    cfg = empty.url("config") + "/api/v1"
    assert httpx.post(cfg + "/users", headers=empty.admin, json={"id": "nobody"}).status_code == 201
    key = httpx.post(cfg + "/keys", headers=empty.admin, json={"user_id": "nobody"}).json()["key"]
    user = wait_for(lambda: _try_sign_in(base, key), timeout=20, interval=0.5)
    for path, says in USER_PAGES.items():
        page = user.get(path)
        assert page.status_code == 200, (path, page.text[:300])
        assert says in page.text, (path, page.text[:2000])
    mine = user.get("/me").text  # this month's credits with nothing spent, no chart yet
    assert "No usage in the last 30 days." in mine and "Spent" in mine, mine[:2000]


def _try_sign_in(base: str, key: str) -> httpx.Client | None:
    try:
        return sign_in(base, key)
    except AssertionError:
        return None
