"""SQL migrations: this service's schema, and the list the CLI and the app apply."""

from __future__ import annotations

from turnout_common.migrations import Migration, load_migrations

SCHEMA: str | None = "config"
USES_OUTBOX = True


def migrations() -> list[Migration]:
    return load_migrations("turnout_config_api.migrations")
