"""``POST /v1/models/select``: which model would serve a request, and why (seed 003).

A dry run of the routing step only: the request is authenticated, parsed and routed exactly
as ``/v1/chat/completions`` (…) would be, but no limit is touched, no upstream is called,
nothing is reserved, billed or metered. The answer lists the attempt chain in order and every
deployment of the names considered that was left out, with the reason.
"""

from __future__ import annotations

import random
from typing import Any

from turnout_common.errors import TurnoutError
from turnout_router.routing import (
    _CAPABILITY,
    _CONTEXT,
    _DISABLED,
    _LATENCY,
    _PRICE,
    _PURPOSE,
    _TIER,
    _UNAVAILABLE,
    Candidate,
    Need,
    _names,
    _reject_reason,
    plan,
)
from turnout_router.state import Conditions, Index

REASONS = {
    _DISABLED: "disabled",
    _PURPOSE: "purpose",
    _TIER: "tier",
    _CAPABILITY: "capability",
    _CONTEXT: "context_window",
    _PRICE: "power_level_price",
    _LATENCY: "power_level_latency",
    _UNAVAILABLE: "unhealthy",
}


def _candidate(pos: int, c: Candidate) -> dict[str, Any]:
    d, p = c.deployment, c.provider
    return {
        "position": pos,
        "model": d.name,
        "provider": p.name,
        "provider_id": p.id,
        "deployment_id": d.id,
        "upstream_model": d.upstream_model,
        "via": c.via,
        "byok": c.byok,
        "input_price_per_mtok": format(d.input_price, "f"),
        "output_price_per_mtok": format(d.output_price, "f"),
        "context_window": d.context_window,
        "deprecated": d.deprecated,
    }


def explain(index: Index, need: Need, cond: Conditions, rng: random.Random) -> dict[str, Any]:
    """The ordered chain (or the error a real request would get) and what was skipped."""
    out: dict[str, Any] = {"requested_model": need.model, "purpose": need.purpose}
    try:
        chain = plan(index, need, cond, rng)
        out["candidates"] = [_candidate(i, c) for i, c in enumerate(chain)]
        out["error"] = None
    except TurnoutError as err:
        out["candidates"] = []
        out["error"] = err.to_dict()["error"] | {"status": err.status}
    level = need.power_level
    price_cap = cond.price_caps.get(level) if level else None
    latency_cap = cond.latency_caps.get(level) if level else None
    skipped: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        sequences = _names(index, need, rng)
    except TurnoutError:
        sequences = []
    for _, names, _ in sequences:
        for name in names:
            for d in index.by_name.get(name, ()):
                if d.id in seen:
                    continue
                seen.add(d.id)
                p = index.providers.get(d.provider_id)
                why = _reject_reason(d, p, need, index, cond, price_cap, latency_cap)
                if why is not None:
                    skipped.append({
                        "model": d.name,
                        "provider": p.name if p is not None else None,
                        "deployment_id": d.id,
                        "reason": REASONS.get(why[0], "other"),
                        "detail": why[1],
                    })  # fmt: skip
    out["skipped"] = skipped
    return out
