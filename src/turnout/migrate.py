"""Cross-service maintenance: migrations and secret rotation."""

from __future__ import annotations

import importlib

from turnout.services import SERVICES
from turnout_common.crypto import KeyRing
from turnout_common.migrations import migrate_dsn
from turnout_common.settings import CommonSettings


async def migrate_all(dsn: str, services: list[str]) -> list[str]:
    applied: list[str] = []
    for name in services:
        main = SERVICES[name].main()
        if main.SCHEMA is None:
            continue
        done = await migrate_dsn(dsn, main.SCHEMA, main.migrations(), outbox=main.USES_OUTBOX)
        applied.extend(f"{main.SCHEMA}/{m}" for m in done)
    return applied


async def rotate_secrets(dsn: str) -> int:
    """Re-encrypt the secrets of every service that stores any (config-api)."""
    ring = KeyRing(CommonSettings().encryption_key_list())
    try:
        rotation = importlib.import_module("turnout_config_api.rotation")
    except ModuleNotFoundError:
        return 0
    count: int = await rotation.rotate_all(dsn, ring)
    return count
