"""Every paginated console page with more rows than fit on a page (a system of its own):
each page holds at most its page size, the pages together hold every row once, and nothing
fails. The same pages at 10,000 rows and a million usage rows: bench/console_render.py."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from tests.console.test_console_http import sign_in

N = 23  # three pages of 10


@pytest.fixture(scope="module")
def crowded(start_own_system: Callable[..., AbstractContextManager[Any]]) -> Iterator[Any]:
    with start_own_system("console_many") as system:
        cfg = system.url("config") + "/api/v1"
        with httpx.Client(headers=system.admin, timeout=10) as c:
            for i in range(N):
                r = c.post(
                    f"{cfg}/providers",
                    json={
                        "name": f"crowd-prov-{i:02d}",
                        "kind": "openai_compatible",
                        "base_url": "http://127.0.0.1:9/v1",
                    },
                )
                assert r.status_code == 201, r.text
                r = c.post(
                    f"{cfg}/models",
                    json={
                        "provider": f"crowd-prov-{i:02d}",
                        "upstream_model": "m",
                        "name": f"crowd-model-{i:02d}",
                        "purposes": ["chat"],
                        "input_price_per_mtok": f"0.{10 + i}",
                        "output_price_per_mtok": 0.2,
                    },
                )
                assert r.status_code == 201, r.text
                r = c.post(f"{cfg}/users", json={"id": f"crowd-user-{i:02d}"})
                assert r.status_code == 201, r.text
        yield system


def _names(html: str, prefix: str) -> list[str]:
    return re.findall(rf"\b({prefix}-\d\d)\b", html)


@pytest.mark.parametrize(
    ("path", "prefix"),
    [("/providers", "crowd-prov"), ("/models", "crowd-model"), ("/users", "crowd-user")],
)
def test_pages_hold_every_row_once(crowded: Any, path: str, prefix: str) -> None:
    admin = sign_in(crowded.url("console"), crowded.info["admin_token"])
    seen: list[str] = []
    for page in (1, 2, 3):
        r = admin.get(path, params={"page": page})
        assert r.status_code == 200, (path, page, r.text[:300])
        on_page = sorted(set(_names(r.text, prefix)))
        assert 0 < len(on_page) <= 10, (path, page, on_page)
        seen += on_page
        assert ("Next" in r.text) == (page < 3), (path, page)
    assert sorted(seen) == [f"{prefix}-{i:02d}" for i in range(N)], (path, seen)
    last = sorted(set(_names(r.text, prefix)))
    for past in (4, 999):  # past the end: the last page, not an empty one
        beyond = admin.get(path, params={"page": past})
        assert beyond.status_code == 200, (path, past)
        assert sorted(set(_names(beyond.text, prefix))) == last, (path, past)
        assert "· page 3 of 3" in beyond.text and "Next" not in beyond.text, (path, past)


def test_the_other_lists_render_with_many_rows(crowded: Any) -> None:
    admin = sign_in(crowded.url("console"), crowded.info["admin_token"])
    for path in ("/audit", "/audit?page=2", "/health", "/health?page=2", "/routes", "/tiers"):
        r = admin.get(path)
        assert r.status_code == 200, (path, r.text[:300])
    audit = admin.get("/audit").text
    assert "crowd-" in audit  # 69 creations: more than a page
    pages = re.search(r"· page 1 of (\d+)", audit)
    assert pages and int(pages.group(1)) > 1, audit[:300]
    beyond = admin.get("/audit", params={"page": 999}).text  # past the end: the last page
    assert f"· page {pages.group(1)} of {pages.group(1)}" in beyond and "crowd-" in beyond
    routes = admin.get("/routes").text
    assert "crowd-model-22" in routes  # every chat model is offered for the chat route
