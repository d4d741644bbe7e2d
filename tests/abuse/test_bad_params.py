"""Issue 21 item 9: odd parameters are a 422, not a 500; disabled users; no id probing.

Before: metering and the health-worker answered 500 to ``?model=a%00b``,
``offset=99999999999999999999`` and ``/credits/a%00b``; metering still served keys of
disabled users; another user's id answered 403 and an unknown one 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .conftest import Tenant, wait_for

ODD = [
    ("metering", "/api/v1/usage?model=a%00b"),
    ("metering", "/api/v1/usage?offset=99999999999999999999"),
    ("metering", "/api/v1/credits/a%00b"),
    ("metering", "/api/v1/usage?user_id=a%0Db"),
    ("health", "/api/v1/health/providers?provider=a%00b"),
    ("health", "/api/v1/health/providers/a%00b/history"),
    ("health", "/api/v1/health/providers/x/history?limit=99999999999999999999"),
    ("config", "/api/v1/providers?offset=99999999999999999999"),
    ("config", "/api/v1/providers/a%00b"),
]


@pytest.mark.parametrize(("service", "path"), ODD)
def test_odd_parameters_are_a_422(system: Any, service: str, path: str) -> None:
    r = httpx.get(system.url(service) + path, headers=system.admin)
    assert r.status_code == 422, (path, r.status_code, r.text[:300])


def test_no_probing_and_no_disabled_users(system: Any, tenant: Callable[..., Tenant]) -> None:
    a, b = tenant(), tenant()
    m = system.url("metering") + "/api/v1/credits/"
    own = {"Authorization": f"Bearer {a.keys[0]}"}
    assert httpx.get(m + a.user_id, headers=own).status_code == 200
    other = httpx.get(m + b.user_id, headers=own)
    unknown = httpx.get(m + "no-such-user-x", headers=own)
    assert other.status_code == unknown.status_code == 404
    r = httpx.patch(system.url("config") + f"/api/v1/users/{a.user_id}",
                    json={"enabled": False}, headers=system.admin)  # fmt: skip
    assert r.status_code == 200, r.text
    wait_for(lambda: httpx.get(m + a.user_id, headers=own).status_code == 403)
    assert httpx.get(m + a.user_id, headers=own).json()["error"]["code"] == "user_disabled"
