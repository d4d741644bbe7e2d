"""asyncpg pool helpers. Each service owns one schema and sets it as its search_path."""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema(schema: str) -> str:
    """Schema names are interpolated into SQL, so only plain identifiers are accepted."""
    if not _SCHEMA_RE.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


def dsn_with_database(dsn: str, database: str) -> str:
    """``dsn`` pointing at another database of the same server."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def can_connect(dsn: str, timeout: float = 3.0) -> bool:
    """Whether a server answers at ``dsn`` (and lets us in)."""
    try:
        conn = await asyncpg.connect(dsn, timeout=timeout)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def advisory_lock_id(purpose: str, schema: str) -> int:
    """The PostgreSQL advisory-lock key (a signed bigint) of one purpose in one schema: the first
    8 bytes of SHA-256 of ``turnout-{purpose}:{schema}``, so two schemas never share a lock."""
    digest = hashlib.sha256(f"turnout-{purpose}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ,
            encoder=lambda v: orjson.dumps(v, default=str).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def create_pool(
    dsn: str,
    *,
    schema: str | None = None,
    min_size: int = 1,
    max_size: int = 10,
    **kwargs: Any,
) -> asyncpg.Pool:
    """A pool whose connections decode json/jsonb and use ``schema`` first on the search_path."""
    server_settings = dict(kwargs.pop("server_settings", {}) or {})
    if schema is not None:
        server_settings["search_path"] = f"{check_schema(schema)},public"
    server_settings.setdefault("application_name", f"turnout-{schema or 'common'}")
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        server_settings=server_settings,
        **kwargs,
    )
    assert pool is not None
    return pool


class Where:
    """A ``WHERE`` clause of conditions added one by one, with asyncpg's numbered parameters:
    each condition's value is the next ``$n``, written ``?`` in its SQL (every ``?`` of it)."""

    __slots__ = ("args", "conds")

    def __init__(self) -> None:
        self.conds: list[str] = []
        self.args: list[Any] = []

    def add(self, sql: str, value: Any) -> None:
        self.args.append(value)
        self.conds.append(sql.replace("?", f"${len(self.args)}"))

    def given(self, sql: str, value: Any) -> None:
        """:meth:`add`, unless ``value`` is None (a filter not asked for)."""
        if value is not None:
            self.add(sql, value)

    @property
    def sql(self) -> str:
        """``" WHERE a AND b"``, or ``""`` without conditions."""
        return f" WHERE {' AND '.join(self.conds)}" if self.conds else ""


async def ping(pool: asyncpg.Pool) -> bool:
    """``SELECT 1`` for readiness checks."""
    try:
        async with pool.acquire(timeout=2) as conn:
            return bool(await conn.fetchval("SELECT 1") == 1)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
