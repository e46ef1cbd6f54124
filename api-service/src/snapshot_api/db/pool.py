"""The asyncpg pool, opened in the lifespan and passed down."""

from __future__ import annotations

import json
import logging
from functools import partial

import asyncpg

from snapshot_api.settings import Settings

log = logging.getLogger(__name__)


async def _init(conn: asyncpg.Connection, role: str) -> None:
    """Every session runs as ``role`` (SNAPSHOT_API_DB_ROLE), whatever the DSN logs in as: a
    superuser or owner DSN (development, tests) is thus held to the restricted grants too."""
    if role:
        await conn.execute(f'SET ROLE "{role}"')  # the setting's pattern admits no quote
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _reset(conn: asyncpg.Connection) -> None:
    """Nothing to reset on release: our connections never SET (beyond the session's role in
    ``_init``, which must stay), LISTEN, hold advisory locks or keep cursors outside a
    transaction, and asyncpg itself rolls back an open transaction before calling this. The
    default reset (which would also RESET ROLE) costs a round trip on every release."""


# PostgreSQL not answering at all (down, restarting, shutting down): the API starts anyway.
UNREACHABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
)


# The database lost or going away mid-request: a request answers 503 ``unavailable``, a consumer
# retries later. One definition for the HTTP layer, messaging and services alike.
DATABASE_DOWN: tuple[type[Exception], ...] = (
    ConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    TimeoutError,
)


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """The pool, with ``db_pool_min`` connections opened at once. When PostgreSQL does not
    answer at start-up, the pool opens its connections on demand instead: the API comes up,
    answers 503 ``unavailable`` until the database is back, and keeps its outbox relay and
    consumers running (one uvicorn worker failing its start-up would stop every worker)."""

    async def open_pool(min_size: int) -> asyncpg.Pool:
        pool = await asyncpg.create_pool(
            settings.database_dsn,
            min_size=min_size,
            max_size=settings.db_pool_max,
            init=partial(_init, role=settings.db_role),
            reset=_reset,
            command_timeout=30,
            timeout=5,
        )
        assert pool is not None
        return pool

    try:
        return await open_pool(settings.db_pool_min)
    except UNREACHABLE as exc:
        log.warning("PostgreSQL not answering at start-up (%s); connecting on demand", exc)
        return await open_pool(0)
