"""Provider test and model discovery (upsert listed models into the catalog)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from turnout_common.crypto import KeyRing
from turnout_common.errors import UpstreamAuthFailed, UpstreamError
from turnout_config_api import prices
from turnout_config_api.changes import Actor
from turnout_config_api.probes import Probe, probe
from turnout_config_api.schemas.providers import DiscoverResult
from turnout_config_api.services import models, providers


async def check_provider(
    pool: asyncpg.Pool,
    ring: KeyRing,
    http: httpx.AsyncClient,
    ref: str,
    timeout: float,
    key: str | None = None,
) -> tuple[asyncpg.Record, Probe]:
    """Probe with ``key`` (a BYOK key) or the provider's own key."""
    async with pool.acquire() as conn:
        row = await providers.get(conn, ref)
    if key is None and row["api_key_encrypted"]:
        key = ring.decrypt(row["api_key_encrypted"])
    return row, await probe(http, row["kind"], row["base_url"], key, timeout)


async def discover(
    pool: asyncpg.Pool,
    ring: KeyRing,
    http: httpx.AsyncClient,
    actor: Actor,
    ref: str,
    timeout: float,
) -> DiscoverResult:
    row, result = await check_provider(pool, ring, http, ref, timeout)
    if not result.ok:
        error = UpstreamAuthFailed if result.status == "auth_failed" else UpstreamError
        raise error(
            f"cannot list models of provider {row['name']!r}: {result.message}",
            code="discovery_failed",
        )
    added: list[str] = []
    present: list[str] = []
    priced: list[str] = []
    unpriced: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        existing = {
            r["upstream_model"]
            for r in await conn.fetch(
                "SELECT upstream_model FROM models WHERE provider_id = $1", row["id"]
            )
        }
        for upstream in dict.fromkeys(result.models):
            if upstream in existing:
                present.append(upstream)
                continue
            values: dict[str, Any] = {
                "name": upstream,
                "upstream_model": upstream,
                "purposes": prices.purposes_for(upstream),
                # known families declare theirs; for the rest nothing is declared, so
                # tools / JSON mode / images pass through and the upstream decides
                "capabilities": prices.capabilities_for(upstream),
                "enabled": False,
            }
            known = prices.lookup(upstream)
            if known is not None:
                inp, out, cached, ctx = known
                values.update(
                    input_price_per_mtok=inp,
                    output_price_per_mtok=out,
                    cached_price_per_mtok=cached,
                    context_window=ctx,
                    enabled=True,
                )
                priced.append(upstream)
            else:
                unpriced.append(upstream)
            await models.insert_and_record(conn, actor, row["id"], values)
            added.append(upstream)
    return DiscoverResult(
        provider=row["name"],
        discovered=len(result.models),
        added=added,
        already_present=present,
        priced=priced,
        disabled_unpriced=unpriced,
        price_table_as_of=prices.AS_OF,
    )
