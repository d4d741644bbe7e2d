"""``turnout config apply`` / ``export``: the declarative config file, straight to the database.

Changes go through config-api's services (same validation, audit log and outbox events), so a
running config-api relays them to the router like any API change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from turnout_common.crypto import KeyRing
from turnout_common.db import create_pool
from turnout_common.settings import CommonSettings


async def apply_file(dsn: str, path: Path, *, dry_run: bool) -> list[str]:
    from turnout_config_api import declarative

    doc = declarative.load_file(path)
    ring = KeyRing(CommonSettings().encryption_key_list())
    pool = await create_pool(dsn, schema="config", min_size=1, max_size=2)
    try:
        return await declarative.apply(pool, ring, doc, dry_run=dry_run)
    finally:
        await pool.close()


async def export_config(dsn: str) -> dict[str, Any]:
    from turnout_config_api import declarative

    pool = await create_pool(dsn, schema="config", min_size=1, max_size=2)
    try:
        return await declarative.export(pool)
    finally:
        await pool.close()
