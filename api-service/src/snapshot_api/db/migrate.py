"""Versioned SQL migrations (``migrations/NNNN_slug.sql``), applied once each, in order.

A migration may have a Python step (``STEPS``), run right after its SQL in the same
transaction: for data work SQL cannot do byte-exactly (gzip, the canonical JSON the renderer
hashes), such as sealing the closed chunks of existing rooms (0011).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

import snapshot_api
from snapshot_api.db import chunks

log = logging.getLogger(__name__)
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_ID = 0x5EA95407  # advisory lock: one migrator at a time
STEPS: dict[str, Callable[[asyncpg.Connection], Awaitable[object]]] = {
    "0011_sealed_chunks": chunks.seal_existing,
}


def migrations_dir() -> Path:
    """Packaged migrations (wheel) or the service's own folder (workspace checkout)."""
    packaged = Path(snapshot_api.__file__).parent / "migrations"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[3] / "migrations"


def discover(folder: Path) -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(folder.iterdir()):
        if m := _NAME.match(path.name):
            found.append((int(m.group(1)), path.stem, path))
    return found


async def ensure_database(dsn: str) -> None:
    """Create the database named in ``dsn`` if it does not exist yet."""
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        base, name = dsn.rsplit("/", 1)
        name = name.split("?", 1)[0]
        admin = await asyncpg.connect(f"{base}/postgres")
        try:
            ident = '"' + name.replace('"', '""') + '"'
            await admin.execute(f"CREATE DATABASE {ident}")
            log.info("created database %s", name)
        except asyncpg.DuplicateDatabaseError:
            pass
        finally:
            await admin.close()
    else:
        await conn.close()


async def migrate(dsn: str, folder: Path | None = None) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date)."""
    await ensure_database(dsn)
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, path in discover(folder or migrations_dir()):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text(encoding="utf-8"))
                if (step := STEPS.get(name)) is not None:
                    log.info("migration %s: %s", name, await step(conn))
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            applied.append(name)
            log.info("applied migration %s", name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
        await conn.close()
    return applied
