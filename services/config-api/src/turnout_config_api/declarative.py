"""Declarative config for ``turnout config apply -f turnout.yaml`` / ``turnout config export``.

The file names entities by their natural keys (provider name, (provider, upstream_model),
route purpose, rule name, tier name, user id). ``apply`` creates or PATCHes only what
differs, through the same services as the API (same validation, audit entries and events),
so applying a file twice changes nothing the second time. Secrets must be ``${ENV_VAR}``
references; a literal key in the file is refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import yaml
from pydantic import BaseModel, ValidationError

from turnout_common.crypto import KeyRing
from turnout_common.errors import ValidationFailed
from turnout_config_api import shapes
from turnout_config_api.changes import Actor
from turnout_config_api.schemas import models as ms
from turnout_config_api.schemas import providers as ps
from turnout_config_api.schemas import routing as rs
from turnout_config_api.schemas import users as us
from turnout_config_api.services import models, providers, routing, users
from turnout_config_api.services.usage import resolve_names

M = TypeVar("M", bound=BaseModel)
PURPOSES = ("chat", "completion", "embeddings", "reranking")
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_MODEL_REFS = ("model", "fallbacks", "targets")


def load_file(path: str | Path) -> dict[str, Any]:
    doc = yaml.safe_load(Path(path).read_text("utf-8")) or {}
    if not isinstance(doc, dict):
        raise ValidationFailed(f"{path}: the top level must be a mapping")
    return doc


def _secret(value: Any, where: str, env: Mapping[str, str]) -> str:
    match = _ENV_REF.match(str(value))
    if not match:
        raise ValidationFailed(
            f"{where}.api_key must be an environment reference like ${{OPENAI_API_KEY}}; "
            "literal secrets are refused in config files"
        )
    if match.group(1) not in env:
        raise ValidationFailed(f"{where}.api_key: environment variable {match.group(1)} is not set")
    return env[match.group(1)]


def _parse(model: type[M], data: Any, where: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(f"{where}.{loc}: {first['msg']}") from exc


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, BaseModel):
        a = a.model_dump()
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, Decimal | int | float) and isinstance(b, Decimal | int | float):
        return Decimal(str(a)) == Decimal(str(b))
    if isinstance(a, dict) and b is not None:
        return a == dict(b)
    if isinstance(a, list) and b is not None:
        return a == list(b)
    return bool(a == b)


def _changed(body: BaseModel, row: Mapping[str, Any], skip: set[str]) -> dict[str, Any]:
    wanted = body.model_dump(exclude_unset=True, exclude=skip)
    return {k: v for k, v in wanted.items() if not _same(v, row[k])}


class Applier:
    def __init__(self, pool: asyncpg.Pool, ring: KeyRing, actor: Actor, dry_run: bool) -> None:
        self.pool, self.ring, self.actor, self.dry_run = pool, ring, actor, dry_run
        self.diff: list[str] = []

    async def _row(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self.pool.acquire() as conn:
            row: asyncpg.Record | None = await conn.fetchrow(sql, *args)
            return row

    async def _resolved(self, body: M) -> M:
        """Model references given by catalog id, as the public names the services store, so
        a file naming a model by id compares equal to what is stored (apply stays idempotent);
        the services still refuse unknown ones."""
        refs = {
            k: v for k, v in body.model_dump(exclude_unset=True).items() if k in _MODEL_REFS and v
        }
        if not refs:
            return body
        update: dict[str, Any] = {}
        async with self.pool.acquire() as conn:
            for k, v in refs.items():
                one = isinstance(v, str)
                names = await resolve_names(conn, [v] if one else v, k, strict=False)
                update[k] = names[0] if one else names
        return body.model_copy(update=update)

    async def tiers(self, items: Mapping[str, Any]) -> None:
        for name, data in items.items():
            body = _parse(us.TierPut, data, f"tiers.{name}")
            row = await self._row("SELECT * FROM tiers WHERE name = $1", name)
            if row is None or _changed(body, row, set()):
                self.diff.append(f"{'~' if row else '+'} tier {name}")
                if not self.dry_run:
                    await users.put_tier(self.pool, self.actor, name, body)

    async def providers(self, items: list[Any], env: Mapping[str, str]) -> None:
        for i, data in enumerate(items):
            where = f"providers[{i}]"
            data = dict(data)
            if "api_key" in data:
                data["api_key"] = _secret(data["api_key"], where, env)
            body = _parse(ps.ProviderCreate, data, where)
            row = await self._row("SELECT * FROM providers WHERE name = $1", body.name)
            if row is None:
                self.diff.append(f"+ provider {body.name}")
                if not self.dry_run:
                    await providers.create(self.pool, self.ring, self.actor, body)
                continue
            changes = _changed(body, row, {"api_key", "base_url"})
            if body.base_url is not None and body.base_url.rstrip("/") != row["base_url"]:
                changes["base_url"] = body.base_url
            if body.api_key is not None and (
                row["api_key_encrypted"] is None
                or self.ring.decrypt(row["api_key_encrypted"]) != body.api_key.get_secret_value()
            ):
                changes["api_key"] = body.api_key
            if changes:
                self.diff.append(f"~ provider {body.name}: {', '.join(sorted(changes))}")
                if not self.dry_run:
                    update = ps.ProviderUpdate.model_validate(changes)
                    await providers.update(self.pool, self.ring, self.actor, row["id"], update)

    async def models(self, items: list[Any]) -> None:
        for i, data in enumerate(items):
            body = await self._resolved(_parse(ms.ModelCreate, data, f"models[{i}]"))
            label = f"model {body.name or body.upstream_model} on {body.provider}"
            row = await self._row(
                "SELECT m.* FROM models m JOIN providers p ON p.id = m.provider_id"
                " WHERE (p.name = $1 OR p.id = $1) AND m.upstream_model = $2",
                body.provider,
                body.upstream_model,
            )
            if row is None:
                self.diff.append(f"+ {label}")
                if not self.dry_run:
                    await models.create(self.pool, self.actor, body)
                continue
            changes = _changed(body, row, {"provider", "upstream_model"})
            if changes:
                self.diff.append(f"~ {label}: {', '.join(sorted(changes))}")
                if not self.dry_run:
                    update = ms.ModelUpdate.model_validate(changes)
                    await models.update(self.pool, self.actor, row["id"], update)

    async def routes(self, items: Mapping[str, Any]) -> None:
        for purpose, data in items.items():
            if purpose not in PURPOSES:
                raise ValidationFailed(f"routes.{purpose}: purpose must be one of {PURPOSES}")
            body = await self._resolved(_parse(rs.RoutePut, data, f"routes.{purpose}"))
            row = await self._row("SELECT * FROM routes WHERE purpose = $1", purpose)
            if row is None or _changed(body, row, set()):
                self.diff.append(f"{'~' if row else '+'} route {purpose}")
                if not self.dry_run:
                    await routing.put_route(self.pool, self.actor, purpose, body)

    async def rules(self, items: list[Any]) -> None:
        for i, data in enumerate(items):
            body = await self._resolved(_parse(rs.RuleCreate, data, f"routing_rules[{i}]"))
            row = await self._row("SELECT * FROM routing_rules WHERE name = $1", body.name)
            if row is None:
                self.diff.append(f"+ routing rule {body.name}")
                if not self.dry_run:
                    await routing.create_rule(self.pool, self.actor, body)
            elif changes := _changed(body, row, set()):
                self.diff.append(f"~ routing rule {body.name}: {', '.join(sorted(changes))}")
                if not self.dry_run:
                    update = rs.RuleUpdate.model_validate(changes)
                    await routing.update_rule(self.pool, self.actor, row["id"], update)

    async def users(self, items: list[Any]) -> None:
        for i, data in enumerate(items):
            body = _parse(us.UserCreate, data, f"users[{i}]")
            if body.id is None:
                raise ValidationFailed(f"users[{i}].id is required in config files")
            row = await self._row("SELECT * FROM users WHERE id = $1", body.id)
            if row is None:
                self.diff.append(f"+ user {body.id}")
                if not self.dry_run:
                    await users.create(self.pool, self.actor, body)
            elif changes := _changed(body, row, {"id"}):
                self.diff.append(f"~ user {body.id}: {', '.join(sorted(changes))}")
                if not self.dry_run:
                    await users.update(
                        self.pool, self.actor, body.id, us.UserUpdate.model_validate(changes)
                    )


async def apply(
    pool: asyncpg.Pool,
    ring: KeyRing,
    doc: Mapping[str, Any],
    *,
    actor: Actor | None = None,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """Make the config match ``doc``; returns the diff (``+`` created, ``~`` changed)."""
    unknown = set(doc) - {"tiers", "providers", "models", "routes", "routing_rules", "users"}
    if unknown:
        raise ValidationFailed(f"unknown top-level section(s): {', '.join(sorted(unknown))}")
    a = Applier(pool, ring, actor or Actor("config-file"), dry_run)
    await a.tiers(doc.get("tiers") or {})
    await a.providers(doc.get("providers") or [], os.environ if env is None else env)
    await a.models(doc.get("models") or [])
    await a.routes(doc.get("routes") or {})
    await a.rules(doc.get("routing_rules") or [])
    await a.users(doc.get("users") or [])
    return a.diff


async def export(pool: asyncpg.Pool) -> dict[str, Any]:
    """The current config in ``apply``'s format; secrets are omitted (never exported)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        tiers = await conn.fetch("SELECT * FROM tiers ORDER BY rank, name")
        provs = await conn.fetch("SELECT * FROM providers ORDER BY name")
        mods = await conn.fetch(
            "SELECT m.*, p.name AS provider_name FROM models m"
            " JOIN providers p ON p.id = m.provider_id ORDER BY p.name, m.upstream_model"
        )
        routes = await conn.fetch("SELECT * FROM routes ORDER BY purpose")
        rules = await conn.fetch("SELECT * FROM routing_rules ORDER BY priority, name")
        people = await conn.fetch("SELECT * FROM users ORDER BY id")
    drop_p = {"id", "api_key_encrypted", "api_key_hint"}
    return {
        "tiers": {
            t["name"]: {k: v for k, v in shapes.tier(t).items() if k != "name"} for t in tiers
        },
        "providers": [
            {k: v for k, v in shapes.provider(p).items() if k not in drop_p} for p in provs
        ],
        "models": [
            {"provider": m["provider_name"]}
            | {k: v for k, v in shapes.model(m).items() if k not in ("id", "provider_id")}
            for m in mods
        ],
        "routes": {
            r["purpose"]: {"model": r["model"], "fallbacks": list(r["fallbacks"])} for r in routes
        },
        "routing_rules": [
            {k: v for k, v in shapes.routing_rule(r).items() if k != "id"} for r in rules
        ],
        "users": [shapes.user(u) for u in people],
    }
