"""Migrations from an empty server: the database is created, the schema applied once."""

from __future__ import annotations

import asyncio

import asyncpg
from snapshot_api.db.migrate import migrate, migrations_dir
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
    assert first == [
        "0001_init",
        "0002_edges_input",
        "0003_outbox_parking",
        "0004_roles",
        "0005_rate_limits",
        "0006_fair_outbox",
        "0007_task_events",
        "0008_webhooks",
        "0009_message_chunks",
        "0010_task_pieces",
        "0011_sealed_chunks",
    ]
    assert second == []
    assert versions == 11
    assert {
        "rooms",
        "members",
        "messages",
        "payloads",
        "snapshots",
        "tasks",
        "outbox",
        "audit",
        "rate_limits",
        "rate_limit_overrides",
    } <= tables


TABLES = (
    "rooms",
    "members",
    "messages",
    "payloads",
    "snapshots",
    "tasks",
    "outbox",
    "webhook_secrets",
    "webhook_deliveries",
    "webhook_attempts",
)
TABLES += ("rate_limits", "rate_limit_overrides")


async def _roles(dsn: str) -> dict[str, object]:
    await migrate(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        # Roles are cluster-wide: the migration runs again for every database, without error.
        await conn.execute((migrations_dir() / "0004_roles.sql").read_text(encoding="utf-8"))
        check = "SELECT has_table_privilege('snapshot_api', $1, $2)"
        return {
            "super": await conn.fetchval(
                "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles"
                " WHERE rolname = 'snapshot_api'"
            ),
            "login": await conn.fetchval(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'snapshot_api'"
            ),
            "audit": {
                p: await conn.fetchval(check, "audit", p)
                for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
            },
            "tables": {
                t: await conn.fetchval(check, t, "SELECT, INSERT, UPDATE, DELETE") for t in TABLES
            },
        }
    finally:
        await conn.close()


def test_the_api_role_may_only_insert_and_read_audit():
    dsn = f"{PG_BASE}/{unique('test_mig_')}"
    try:
        found = asyncio.run(_roles(dsn))
    finally:
        drop_database(dsn)
    assert found["super"] is False and found["login"] is True
    assert found["audit"] == {
        "SELECT": True, "INSERT": True, "UPDATE": False, "DELETE": False, "TRUNCATE": False,
    }  # fmt: skip
    assert set(found["tables"].values()) == {True}  # type: ignore[union-attr]
