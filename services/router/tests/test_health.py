"""Health and config changes steer traffic within a second: down / circuit-open / disabled."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest

from turnout_common.events import HealthEvent
from turnout_common.topics import HEALTH

ALICE_KEY = "tk-alice-test-key-000000000000000000000000"
MSG = [{"role": "user", "content": "hi"}]


async def served_by(router: Any, model: str) -> str:
    c = openai.AsyncOpenAI(base_url=router.url + "/v1", api_key=ALICE_KEY, max_retries=0)
    raw = await c.chat.completions.with_raw_response.create(model=model, messages=MSG)
    return raw.headers["x-turnout-provider"]


async def eventually(router: Any, model: str, provider: str, timeout: float = 30.0) -> None:
    # a liveness wait, not a timing claim: on a loaded 2-core VM the shared test broker has
    # been seen timing out fetches for several seconds (CI runs of 2026-12-04)
    t0 = time.monotonic()
    while (got := await served_by(router, model)) != provider:
        if time.monotonic() - t0 >= timeout:
            state = router.app.state
            raise AssertionError(
                f"{model} still served by {got}, not {provider}; router conditions: "
                f"{state.conditions}; health of {got}: {state.health_of(got)}; "
                f"health follower running: {router.app.followers.health.running}"
            )
        await asyncio.sleep(0.02)


# Known flake (2026-12-04): in full-suite runs the session's shared Tansu broker sometimes
# times out the router's fetches ("Failed fetch messages … RequestTimedOutError", then
# "Connection … closed") for longer than the wait below, and the health event never arrives;
# alone, or in a quiet full run, it passes. Rerun once while the cause is investigated.
@pytest.mark.flaky(reruns=2)
async def test_unhealthy_and_disabled_providers_are_skipped(
    router: Any, world: Any, unique: str, producer: Any, fakes: Any
) -> None:
    url = fakes["three"][1].url + "/v1"
    prov = world.provider(f"p-{unique}", url)
    await world.put("provider", f"p-{unique}", prov)
    await world.put(
        "model",
        f"m-{unique}",
        world.model(f"m-{unique}", unique, f"p-{unique}", fallbacks=["backup"]),
    )
    t0 = time.monotonic()
    while unique not in router.app.state.index.known_names:
        assert time.monotonic() - t0 < 1.0, "a new model took more than a second"
        await asyncio.sleep(0.01)
    assert await served_by(router, unique) == f"p-{unique}"

    async def health(status: str, circuit: str, auto_disabled: bool) -> None:
        ev = HealthEvent(
            provider_id=f"p-{unique}",
            status=status,  # type: ignore[arg-type]
            circuit=circuit,  # type: ignore[arg-type]
            auto_disabled=auto_disabled,
        )
        await producer.send(HEALTH.name, ev.to_bytes(), key=ev.provider_id.encode())

    await health("down", "open", auto_disabled=True)
    await eventually(router, unique, "p2")
    await health("healthy", "closed", auto_disabled=False)
    await eventually(router, unique, f"p-{unique}")
    await health("degraded", "open", auto_disabled=True)
    await eventually(router, unique, "p2")
    await health("healthy", "half_open", auto_disabled=False)  # trial traffic again:
    while f"p-{unique}" not in router.app.state.conditions.trial:
        await asyncio.sleep(0.01)
    # first in the chain for TURNOUT_HALF_OPEN_TRIAL_SHARE (10 %) of requests, so give it time
    await eventually(router, unique, f"p-{unique}", timeout=40)
    # a system provider is reported down / open but never disabled (SPEC §2)
    await health("down", "open", auto_disabled=False)
    # one partition: once a later event (for another provider) is applied, so is that one
    marker = HealthEvent(provider_id=f"marker-{unique}", status="down", auto_disabled=True)
    await producer.send(HEALTH.name, marker.to_bytes(), key=marker.provider_id.encode())
    while f"marker-{unique}" not in router.app.state.conditions.unavailable:
        await asyncio.sleep(0.01)
    assert router.app.state.health_of(f"p-{unique}") == ("down", "open")
    assert await served_by(router, unique) == f"p-{unique}"
    await world.put("provider", f"p-{unique}", {**prov, "enabled": False})
    await eventually(router, unique, "p2")


def test_trial_subjects_follow_the_circuit() -> None:
    from turnout_router.state import RouterState

    state = RouterState(None)
    state.apply_health("p", "healthy", "half_open", auto_disabled=False)
    assert "p" in state.conditions.trial and "p" not in state.conditions.unavailable
    state.apply_health("p", "down", "open", auto_disabled=True)
    assert "p" not in state.conditions.trial and "p" in state.conditions.unavailable
    state.apply_health("p", "healthy", "half_open")  # no flag: half-open is not skipped
    assert "p" in state.conditions.trial and "p" not in state.conditions.unavailable
    state.apply_health("p", "healthy", "closed", auto_disabled=False)
    assert "p" not in state.conditions.trial and "p" not in state.conditions.unavailable
    # a system provider reported half-open but disabled by nobody is on trial too;
    # one the worker disabled is skipped, not tried
    state.apply_health("q", "down", "half_open", auto_disabled=True)
    assert "q" not in state.conditions.trial and "q" in state.conditions.unavailable


def test_probe_latency_is_kept_per_provider_only() -> None:
    from turnout_router.state import RouterState

    state = RouterState(None)
    state.apply_health("p", "healthy", "closed", False, latency_ms=250.0)
    state.apply_health("p:d1", "degraded", "closed", False, latency_ms=40_000.0)
    assert state.conditions.latency == {
        "p": 250.0
    }  # a deployment's passive latency is a generation
    state.apply_health("p", "down", "open", True)  # no latency in the event: unknown again
    assert state.conditions.latency == {}


def test_conditions_are_replaced_only_when_the_health_state_changes() -> None:
    from turnout_router.state import Conditions, RouterState

    state = RouterState(None)
    limits = Conditions(trial_share=0.3, price_caps={"eco": 1.0}, max_attempts=2)
    state.conditions = limits
    state.apply_health("p", "healthy", "closed", False)
    assert state.conditions is limits  # nothing changed: no new object
    state.apply_health("p", "down", "open", True)
    down = state.conditions
    assert down is not limits and down.unavailable == {"p"}
    assert (down.trial_share, down.price_caps, down.max_attempts) == (0.3, {"eco": 1.0}, 2)
    state.apply_health("p", "down", "open", True)
    assert state.conditions is down
    state.apply_health("p", "healthy", "closed", False, latency_ms=120.0)
    assert state.conditions.unavailable == frozenset() and state.conditions.latency == {"p": 120.0}
    assert down.unavailable == {"p"} and down.latency == {}  # an older value never changes


async def test_the_router_routes_with_its_settings_limits(router: Any) -> None:
    s, c = router.app.settings, router.app.state.conditions
    assert (c.trial_share, c.max_attempts) == (s.half_open_trial_share, s.max_attempts)
    assert (c.price_caps, c.latency_caps) == (s.price_caps(), s.latency_caps())
