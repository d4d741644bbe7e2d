"""Issue 21 item 3: prepaid balances are reserved like budgets.

Before: a user with a tiny balance hit by 64 concurrent requests got 64 answers and ended at
17.9x its balance below zero, because the router reserved in-flight cost against budgets
only. Now credit events carry the balance and the router reserves against it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx

from .conftest import Tenant, usage_rows, wait_for

BALANCE = Decimal("0.05")


def credits(system: Any, user: str) -> dict[str, Any]:
    r = httpx.get(system.url("metering") + f"/api/v1/credits/{user}", headers=system.admin)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_64_concurrent_requests_cannot_overspend_a_balance(
    system: Any, tenant: Callable[..., Tenant]
) -> None:
    # 1000 USD per 1M tokens: one answer (4 prompt + 9 output tokens) costs $0.013 and
    # reserves $0.021 with max_tokens=20 (the estimate)
    t = tenant(price="1000", tier={"rpm_limit": 100_000})
    r = httpx.post(system.url("metering") + f"/api/v1/credits/{t.user_id}/grant",
                   json={"amount_usd": str(BALANCE), "reason": "abuse test"},
                   headers=system.admin)  # fmt: skip
    assert r.status_code == 201, r.text
    # the router knows the balance once a request it cannot cover is refused. Until then it
    # serves (and bills) such a probe, a few at most (one in three runs here; probes are paced
    # so a slow credit event does not drain the balance): start counts once metering has every
    # probe's record, and the burst waits until the router's refusal names that balance as what
    # the user may still spend (the credit event that reflects the probes it served reached it)
    probes = 0

    def refused_with(room: str = "") -> bool:
        nonlocal probes
        probes += 1
        r = t.chat(max_tokens=5000)
        return r.status_code == 429 and room in r.json()["error"]["message"]

    wait_for(refused_with, interval=0.25)
    wait_for(lambda: len(usage_rows(system, t.user_id)) == probes)
    start = Decimal(credits(system, t.user_id)["balance_usd"])
    wait_for(lambda: refused_with(f"${start:.4f} of"))
    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(lambda _: t.chat(max_tokens=20), range(64)))
    served = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(served) + len(refused) == 64, {a.status_code for a in answers}
    codes = {a.json()["error"]["code"] for a in refused}
    assert codes <= {"insufficient_quota"}, [a.json() for a in refused[:3]]
    cost = Decimal("0.013")
    want = start - cost * len(served)
    # every answer's record reached metering, which moves the balance in the same transaction
    # (served usage may take it below zero: the ledger is not clamped)
    wait_for(lambda: len(usage_rows(system, t.user_id)) == probes + 64)
    balance = Decimal(credits(system, t.user_id)["balance_usd"])
    assert balance == want, (balance, start, len(served))
    # before: all 64 served ($0.83 on a $0.05 balance); now at most what the balance covers
    assert 1 <= len(served) <= int(start / cost) + 1, (len(served), start)
    assert want >= -cost, want
