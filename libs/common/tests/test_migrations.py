import asyncio
from pathlib import Path

import asyncpg
import pytest

from turnout_common.migrations import load_migrations, migrate, migrate_dsn


@pytest.fixture
def mig_dir(tmp_path: Path) -> Path:
    (tmp_path / "0001_init.sql").write_text(
        "CREATE TABLE {schema}.things (id serial PRIMARY KEY, name text NOT NULL);"
    )
    (tmp_path / "0002_more.sql").write_text(
        "ALTER TABLE things ADD COLUMN price numeric; INSERT INTO things(name) VALUES ('a');"
    )
    (tmp_path / "README.txt").write_text("ignored")
    return tmp_path


async def test_migrations_apply_once_in_order(database_url: str, mig_dir: Path) -> None:
    migs = load_migrations(mig_dir)
    assert [m.version for m in migs] == [1, 2]
    applied = await migrate_dsn(database_url, "mig_once", migs)
    assert applied == ["0001_init.sql", "0002_more.sql"]
    assert await migrate_dsn(database_url, "mig_once", migs) == []
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM mig_once.things") == 1
        versions = await conn.fetch("SELECT version FROM mig_once.schema_migrations ORDER BY 1")
        assert [r["version"] for r in versions] == [1, 2]
    finally:
        await conn.close()


async def test_concurrent_runners_are_safe(database_url: str, mig_dir: Path) -> None:
    migs = load_migrations(mig_dir)
    results = await asyncio.gather(*(migrate_dsn(database_url, "mig_conc", migs) for _ in range(5)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 2]
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM mig_conc.things") == 1
    finally:
        await conn.close()


async def test_failed_migration_leaves_nothing_half_applied(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE {schema}.a (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE {schema}.b (id int); SELECT nope;")
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.PostgresError):
            await migrate(conn, "mig_bad", load_migrations(tmp_path))
        assert await conn.fetchval("SELECT to_regclass('mig_bad.a') IS NOT NULL")
        assert await conn.fetchval("SELECT to_regclass('mig_bad.b') IS NULL")
        assert await conn.fetchval("SELECT max(version) FROM mig_bad.schema_migrations") == 1
    finally:
        await conn.close()


def test_bad_schema_name_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid schema"):
        asyncio.run(migrate_dsn("postgresql://x", "bad; drop", []))
