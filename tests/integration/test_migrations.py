"""Migrations from an empty server: the database is created, the schema applied once."""

from __future__ import annotations

import asyncio

import asyncpg
from snapshot_api.db.migrate import migrate
from support.services import PG_BASE, drop_database, unique


async def _inspect(dsn: str) -> tuple[list[str], list[str], set[str], int]:
    first = await migrate(dsn)
    second = await migrate(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        versions = await conn.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await conn.close()
    return first, second, tables, versions


def test_migrate_creates_database_and_is_idempotent():
    dsn = f"{PG_BASE}/{unique('test_mig_')}"
    try:
        first, second, tables, versions = asyncio.run(_inspect(dsn))
    finally:
        drop_database(dsn)
    assert first == ["0001_init", "0002_edges_input", "0003_outbox_parking", "0004_roles"]
    assert second == []
    assert versions == 4
    assert {
        "rooms",
        "members",
        "messages",
        "payloads",
        "snapshots",
        "tasks",
        "outbox",
        "audit",
    } <= tables
