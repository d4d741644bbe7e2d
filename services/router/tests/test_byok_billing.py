"""Issue 16 items 3-4 on the router: a request served with the user's own provider key records
its catalog cost and bills its tier's ``byok_fee_pct`` of it; non-streaming answers say what
it cost and what credit is left; a stream's usage chunk carries the same in ``turnout``."""

from __future__ import annotations

import asyncio
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import aiohttp
import orjson

from turnout_common.events import CreditEvent
from turnout_common.topics import CREDIT

NANO = Decimal("0.000000001")
MSG = [{"role": "user", "content": "hello there my friend"}]


async def until(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def _setup(world: Any, router: Any, unique: str, fee: str) -> tuple[str, str]:
    tier, user = f"t-{unique}", f"u-{unique}"
    await world.put(
        "tier", tier, {"name": tier, "rank": 3, "monthly_credits_usd": "0", "byok_fee_pct": fee}
    )
    await world.put(
        "user", user, {"id": user, "tier": tier, "monthly_budget_usd": None, "enabled": True}
    )
    secret = f"tk-{unique}-secret-000000000000000000000"
    key = world.key(f"k-{unique}", user, secret)
    await world.put("virtual_key", f"k-{unique}", key)
    own = f"sk-own-{unique}"
    await world.put(
        "byok_key",
        f"{user}:p2",
        {
            "user_id": user,
            "provider_id": "p2",
            "api_key_encrypted": world.ring.encrypt(own),
            "api_key_hint": "sk-…",
        },
    )
    state = router.app.state  # its index is rebuilt on each config change
    await until(
        lambda: key["key_hash"] in state.index.keys_by_hash and (user, "p2") in state.index.byok
    )
    return secret, own


async def _post(router: Any, key: str, body: dict[str, Any]) -> tuple[int, bytes, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession() as s,
        s.post(router.url + "/v1/chat/completions", json=body, headers=headers) as r,
    ):
        return r.status, await r.read(), r.headers


def _billed(cost: str, pct: str) -> str:
    return f"{(Decimal(cost) * Decimal(pct) / 100).quantize(NANO, ROUND_HALF_UP):.9f}"


async def test_byok_request_bills_the_fee(
    router: Any, world: Any, unique: str, producer: Any, usage_log: Any, fakes: Any
) -> None:
    key, own = await _setup(world, router, unique, "12.5")
    user = f"u-{unique}"
    # the user has $3 of prepaid credit (metering's state)
    ev = CreditEvent(
        subject_type="user", subject_id=user, period="2026-12", remaining_usd="3",
        balance_usd="3", seq=1,
    )  # fmt: skip
    await producer.send(CREDIT.name, ev.to_bytes(), key=ev.key.encode())
    await until(lambda: f"user:{user}" in router.app.state.credits)

    status, body, headers = await _post(router, key, {"model": "backup", "messages": MSG})
    assert status == 200, body
    assert headers["x-turnout-provider"] == "p2"
    assert fakes["two"][0].requests[-1]["headers"]["Authorization"] == f"Bearer {own}"
    rec = await usage_log.wait(headers["x-request-id"])
    assert rec["byok"] is True
    cost = headers["x-turnout-cost-usd"]
    assert rec["cost_usd"] == cost and Decimal(cost) > 0
    assert rec["billed_usd"] == _billed(cost, "12.5")
    left = Decimal(3) - Decimal(rec["billed_usd"])
    assert headers["x-turnout-credits-remaining-usd"] == f"{left:.9f}"

    # the same user on a provider without their key: billed in full
    status, body, headers = await _post(router, key, {"model": "primary", "messages": MSG})
    assert status == 200 and headers["x-turnout-provider"] == "p1"
    rec = await usage_log.wait(headers["x-request-id"])
    assert rec["byok"] is False and rec["billed_usd"] == rec["cost_usd"]


async def test_stream_usage_chunk_says_what_it_cost(
    router: Any, world: Any, unique: str, usage_log: Any
) -> None:
    key, _ = await _setup(world, router, unique, "50")
    body = {
        "model": "backup",
        "messages": MSG,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    status, raw, headers = await _post(router, key, body)
    assert status == 200
    chunks = [orjson.loads(line[6:]) for line in raw.split(b"\n\n") if line.startswith(b"data: {")]
    priced = [c for c in chunks if "turnout" in c]
    assert len(priced) == 1 and priced[0]["usage"]["completion_tokens"] > 0
    rec = await usage_log.wait(headers["x-request-id"])
    # no budget and no prepaid credit: nothing to say about what is left
    assert priced[0]["turnout"] == {"cost_usd": rec["cost_usd"], "credits_remaining_usd": None}
    assert rec["billed_usd"] == _billed(rec["cost_usd"], "50")
    # without include_usage the client gets no usage chunk, hence no turnout object
    body.pop("stream_options")
    status, raw, _ = await _post(router, key, body)
    assert status == 200 and b'"turnout"' not in raw and b'"usage":{' not in raw


async def test_lab_quota_used_up_refuses_lab_requests(
    router: Any, world: Any, unique: str, producer: Any
) -> None:
    """Issue 16 item 5: once metering says the tier's lab quota is used up, lab requests get a
    clear 429; the user's other requests still pass."""
    key, _ = await _setup(world, router, unique, "0")
    user = f"u-{unique}"
    lab = {"model": "primary", "messages": MSG}
    headers = {"Authorization": f"Bearer {key}", "x-turnout-source": "lab"}

    async def post_lab() -> tuple[int, dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as s,
            s.post(router.url + "/v1/chat/completions", json=lab, headers=headers) as r,
        ):
            return r.status, await r.json()

    assert (await post_lab())[0] == 200
    ev = CreditEvent(
        subject_type="user", subject_id=user, period="2026-12", lab_requests=100,
        lab_quota=100, lab_blocked=True, seq=7,
    )  # fmt: skip
    await producer.send(CREDIT.name, ev.to_bytes(), key=ev.key.encode())
    await until(lambda: router.app.state.credits.get(f"user:{user}") is not None)
    status, body = await post_lab()
    assert status == 429 and body["error"]["code"] == "lab_quota_exceeded", body
    assert "100 requests" in body["error"]["message"]
    status, _, _ = await _post(router, key, lab)  # not from the lab: served
    assert status == 200
