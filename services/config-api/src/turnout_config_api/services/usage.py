"""Who uses a model name: routes and routing rules (for 409s on delete, 422s on write)."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from turnout_common.errors import Conflict, ValidationFailed


async def users_of(conn: asyncpg.Connection, names: Iterable[str]) -> list[str]:
    """Routes and rules that reference any of ``names`` (as model, fallback or target)."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    routes = await conn.fetch(
        "SELECT purpose FROM routes WHERE model = ANY($1::text[]) OR fallbacks && $1::text[]"
        " ORDER BY purpose",
        wanted,
    )
    rules = await conn.fetch(
        "SELECT name FROM routing_rules WHERE targets && $1::text[] ORDER BY name", wanted
    )
    return [f"route '{r['purpose']}'" for r in routes] + [
        f"routing rule '{r['name']}'" for r in rules
    ]


async def exclusive_names(
    conn: asyncpg.Connection, *, provider_id: str | None = None, model_id: str | None = None
) -> list[str]:
    """Public names that would have no deployment left without this provider / model."""
    if provider_id is not None:
        rows = await conn.fetch(
            "SELECT DISTINCT m.name FROM models m WHERE m.provider_id = $1 AND NOT EXISTS"
            " (SELECT 1 FROM models o WHERE o.name = m.name AND o.provider_id <> $1)",
            provider_id,
        )
    else:
        rows = await conn.fetch(
            "SELECT m.name FROM models m WHERE m.id = $1 AND NOT EXISTS"
            " (SELECT 1 FROM models o WHERE o.name = m.name AND o.id <> $1)",
            model_id,
        )
    return [r["name"] for r in rows]


async def refuse_if_used(conn: asyncpg.Connection, what: str, names: list[str]) -> None:
    users = await users_of(conn, names)
    if users:
        raise Conflict(
            f"{what} is still used by {', '.join(users)} (through model "
            f"{', '.join(repr(n) for n in sorted(set(names)))}); change those first",
            code="in_use",
        )


async def require_known_names(conn: asyncpg.Connection, names: list[str], param: str) -> None:
    """Routes and rules may only reference public names that exist in the catalog."""
    if not names:
        return
    known = {
        r["name"]
        for r in await conn.fetch(
            "SELECT name FROM models WHERE name = ANY($1::text[])"
            " UNION SELECT unnest(aliases) FROM models WHERE aliases && $1::text[]",
            names,
        )
    }
    missing = [n for n in names if n not in known]
    if missing:
        raise ValidationFailed(
            f"unknown model name(s) {', '.join(repr(n) for n in missing)}: "
            "create them with POST /api/v1/models first",
            param=param,
        )
