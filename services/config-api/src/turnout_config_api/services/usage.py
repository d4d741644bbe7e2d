"""Model references: who uses a name (409s on delete) and name-or-id resolution (422s on write)."""

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


async def resolve_names(
    conn: asyncpg.Connection, refs: list[str], param: str, *, strict: bool = True
) -> list[str]:
    """Model references as public names (SPEC: by name or id), in order.

    A catalog name or alias stays as it is (so nothing accepted before changes meaning); a
    catalog entry's id becomes that entry's public name, which is what is stored, published
    and compared by the router. Anything else is a 422 when ``strict``, else kept unchanged
    (references that may name a model created later, like a model's own fallbacks).
    """
    if not refs:
        return []
    known: set[str] = set()
    by_id: dict[str, str] = {}
    for r in await conn.fetch(
        "SELECT id, name, aliases FROM models"
        " WHERE name = ANY($1::text[]) OR aliases && $1::text[] OR id = ANY($1::text[])",
        refs,
    ):
        known.add(r["name"])
        known.update(r["aliases"])
        by_id[r["id"]] = r["name"]
    out = [ref if ref in known else by_id.get(ref, ref) for ref in refs]
    missing = [ref for ref in refs if ref not in known and ref not in by_id]
    if strict and missing:
        raise ValidationFailed(
            f"unknown model(s) {', '.join(repr(n) for n in missing)} (not a catalog name, "
            "alias or id): create them with POST /api/v1/models first",
            param=param,
        )
    return out
