"""Fresh databases and queue prefixes on the machine's PostgreSQL and RabbitMQ, cleaned up after."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import aio_pika
import asyncpg
from snapshot_api.db.migrate import migrate
from snapshot_shared.topology import Topology, delete

PG_BASE = os.environ.get("TEST_PG_BASE", "postgresql://postgres@127.0.0.1:5432")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
# SNAPSHOT_API_RATE_LIMITS of the test APIs: tests create many rooms, messages and snapshots
# as one user, so limits far above what they do (the limiter still runs on every request);
# tests/integration/test_rate_limits.py covers the defaults and the refusals.
HIGH_RATE_LIMITS = (
    "rooms=100000/minute,messages=1000000/minute,members=100000/minute,snapshots=100000/minute"
)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def create_database() -> str:
    """A new, migrated database; returns its DSN."""
    dsn = f"{PG_BASE}/{unique('test_snap_')}"
    asyncio.run(migrate(dsn))
    return dsn


def drop_database(dsn: str) -> None:
    name = dsn.rsplit("/", 1)[1]

    async def run() -> None:
        conn = await asyncpg.connect(f"{PG_BASE}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(run())


async def remove_topology(topology: Topology) -> None:
    """Delete ``topology``'s queues and exchanges on a connection of its own. Callers close
    their robust connections first: a robust channel whose consumer is cancelled by the
    delete can declare its queue again (stray ``<prefix>render.status`` queues were left)."""
    conn = await aio_pika.connect(AMQP_URL)
    try:
        await delete(await conn.channel(), topology)
    finally:
        await conn.close()


def delete_topology(prefix: str) -> None:
    asyncio.run(remove_topology(Topology(prefix=prefix)))


@contextmanager
def own_prefix(label: str) -> Iterator[str]:
    """A new queue prefix (``label`` and a random part, then a dot); its topology is deleted
    afterwards, so nothing left in its queues reaches another test."""
    prefix = unique(label) + "."
    try:
        yield prefix
    finally:
        delete_topology(prefix)
