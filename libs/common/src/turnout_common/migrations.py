"""A tiny migration runner: numbered SQL files per service schema.

Files are named ``NNNN_description.sql`` and applied in order, each in its own transaction,
once, under a per-schema advisory lock (so concurrent runners are safe), and recorded in
``<schema>.schema_migrations``. ``{schema}`` in a file is replaced by the schema name.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import asyncpg

from turnout_common.db import advisory_lock_id, check_schema
from turnout_common.outbox import OUTBOX_DDL

log = logging.getLogger(__name__)
_NAME_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(source: str | Path | Traversable) -> list[Migration]:
    """Migrations from a directory or a package resource (``"turnout_x.migrations"``)."""
    root: Path | Traversable = files(source) if isinstance(source, str) else source
    found: list[Migration] = []
    for entry in root.iterdir():
        match = _NAME_RE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration numbers in {source}")
    return found


async def migrate(
    conn: asyncpg.Connection,
    schema: str,
    migrations: list[Migration],
    *,
    outbox: bool = False,
) -> list[str]:
    """Apply pending migrations to ``schema``; returns the names applied now.

    With ``outbox=True`` the schema also gets the transactional outbox table.
    """
    check_schema(schema)
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", advisory_lock_id("migrate", schema))
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        if outbox:
            await conn.execute(OUTBOX_DDL.replace("{schema}", schema))
        done = {
            r["version"]
            for r in await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")
        }
        for mig in migrations:
            if mig.version in done:
                continue
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {schema}, public")
                await conn.execute(mig.sql.replace("{schema}", schema))
                await conn.execute(
                    f"INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)",
                    mig.version,
                    mig.name,
                )
            log.info("applied migration %s to schema %s", mig.name, schema)
            applied_now.append(mig.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", advisory_lock_id("migrate", schema))
    return applied_now


async def migrate_dsn(
    dsn: str,
    schema: str,
    migrations: list[Migration],
    *,
    outbox: bool = False,
) -> list[str]:
    check_schema(schema)
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn, schema, migrations, outbox=outbox)
    finally:
        await conn.close()
