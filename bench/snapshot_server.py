#!/usr/bin/env python3
"""A stand-in for config-api's snapshot endpoint, so the router can be benchmarked alone.

``GET /api/v1/snapshot`` (admin bearer token) returns the config the bench needs, in the
shapes of docs/CONTRACTS.md: one ``openai_compatible`` provider per mock upstream (API key
Fernet-encrypted with the bench's key), models ``bench-fast`` (mock without delay),
``bench-slow`` (50 ms mock) and ``bench-stream`` (50 ms + 20 ms per chunk), the chat route,
the four tiers, one user and one virtual key whose sha256 ``key_hash`` matches the plaintext
the load generator sends.

  snapshot_server.py --port P --fast URL --slow URL --stream URL
  env: TURNOUT_ADMIN_TOKEN, TURNOUT_ENCRYPTION_KEYS (the first encrypts), BENCH_KEY (virtual key)
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from aiohttp import web

from turnout_common.auth import bearer_token
from turnout_common.crypto import KeyRing, constant_time_equals, hash_virtual_key, key_hint

UPSTREAM_KEY = "sk-bench-upstream-0000"
USER_ID = "bench-user"
KEY_ID = "bench-key"
HITS = web.AppKey("hits", int)
TIERS = (("free", 0), ("starter", 1), ("professional", 2), ("enterprise", 3))


def provider(pid: str, base_url: str, ring: KeyRing) -> dict[str, Any]:
    return {
        "id": pid,
        "name": pid,
        "kind": "openai_compatible",
        "base_url": base_url.rstrip("/"),
        "enabled": True,
        "api_key_encrypted": ring.encrypt(UPSTREAM_KEY),
        "api_key_hint": key_hint(UPSTREAM_KEY),
        "rpm_limit": None,
        "tpm_limit": None,
        "priority": 0,
        "weight": 1,
        "min_tier": "free",
        "is_system": False,
        "timeout_s": 60,
        "metadata": {},
    }


def model(name: str, provider_id: str) -> dict[str, Any]:
    return {
        "id": f"{name}-deployment",
        "name": name,
        "provider_id": provider_id,
        "upstream_model": "gpt-4o-mini",
        "purposes": ["chat", "completion"],
        "context_window": 128000,
        "max_output_tokens": 4096,
        "capabilities": {"streaming": True, "tools": True, "vision": False, "json_mode": True},
        "input_price_per_mtok": "0.15",
        "output_price_per_mtok": "0.60",
        "cached_price_per_mtok": "0.075",
        "power_level": "eco",
        "min_tier": "free",
        "enabled": True,
        "deprecated": False,
        "priority": 0,
        "weight": 1,
        "fallbacks": [],
        "aliases": [],
    }


def build_snapshot(
    upstreams: dict[str, str], ring: KeyRing, virtual_key: str, *, limits: bool = False
) -> dict[str, Any]:
    """The snapshot body; ``upstreams`` maps model name (bench-fast, ...) to a mock base URL;
    ``limits``: the key has (unreachable) rpm/tpm limits and the user a budget."""
    items: list[tuple[str, str, dict[str, Any]]] = []
    for name, base_url in upstreams.items():
        items.append(("provider", f"{name}-mock", provider(f"{name}-mock", base_url, ring)))
        m = model(name, f"{name}-mock")
        items.append(("model", m["id"], m))
    first = next(iter(upstreams))
    items.append(("route", "chat", {"purpose": "chat", "model": first, "fallbacks": []}))
    for tier, rank in TIERS:
        tier_data = {"name": tier, "rank": rank, "monthly_credits_usd": "0",
                     "rpm_limit": None, "tpm_limit": None}  # fmt: skip
        items.append(("tier", tier, tier_data))
    budget = "1000000" if limits else None  # never reached: every request reserves against it
    user = {"id": USER_ID, "tier": "enterprise", "monthly_budget_usd": budget, "enabled": True}
    items.append(("user", USER_ID, user))
    vkey = {
        "id": KEY_ID,
        "user_id": USER_ID,
        "name": "bench",
        "key_hash": hash_virtual_key(virtual_key),
        "key_hint": key_hint(virtual_key),
        "allowed_models": None,
        # never reached either: every request takes from both (bench/run_limits.sh)
        "rpm_limit": 1_000_000_000 if limits else None,
        "tpm_limit": 1_000_000_000_000 if limits else None,
        "budget_usd": None,
        "expires_at": None,
        "revoked": False,
    }
    items.append(("virtual_key", KEY_ID, vkey))
    entities = [
        {"revision": rev, "entity": ent, "entity_id": eid, "op": "upsert", "data": data}
        for rev, (ent, eid, data) in enumerate(items, start=1)
    ]
    return {"revision": len(entities), "entities": entities}


def make_app(snapshot: dict[str, Any], admin_token: str) -> web.Application:
    async def get_snapshot(request: web.Request) -> web.Response:
        token = bearer_token(request.headers.get("Authorization"))
        if token is None or not constant_time_equals(token, admin_token):
            return web.json_response({"error": "admin bearer token required"}, status=401)
        request.app[HITS] += 1
        return web.json_response(snapshot)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "snapshot_hits": request.app[HITS]})

    app = web.Application()
    app[HITS] = 0
    app.router.add_get("/api/v1/snapshot", get_snapshot)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--fast", required=True, help="base URL (…/v1) of the mock without delay")
    ap.add_argument("--slow", required=True, help="base URL of the 50 ms mock")
    ap.add_argument("--stream", required=True, help="base URL of the slow-stream mock")
    ap.add_argument(
        "--limits", action="store_true", help="the key has rpm/tpm limits, the user a budget"
    )
    args = ap.parse_args()
    ring = KeyRing([k for k in os.environ["TURNOUT_ENCRYPTION_KEYS"].split(",") if k])
    upstreams = {"bench-fast": args.fast, "bench-slow": args.slow, "bench-stream": args.stream}
    snapshot = build_snapshot(upstreams, ring, os.environ["BENCH_KEY"], limits=args.limits)
    app = make_app(snapshot, os.environ["TURNOUT_ADMIN_TOKEN"])
    print(f"snapshot_server pid={os.getpid()} port={args.port}", flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
