"""The worker's one LISTEN connection on ``task_events`` (migration 0007 NOTIFYs it).

It is a connection of its own, outside the pool (a pooled connection would be handed to a
request with LISTEN still on, and its notifications lost on release). When it is lost (a
PostgreSQL restart, a terminated backend, a silent network cut caught by a ping) it reconnects
with a growing pause, and once listening again it asks every open stream to re-read its task:
a change committed while nobody listened must still reach its client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import asyncpg

from snapshot_api.background import BackgroundLoop
from snapshot_api.metrics import TASK_EVENTS_RECONNECTS
from snapshot_api.settings import Settings

log = logging.getLogger(__name__)
CHANNEL = "task_events"
APPLICATION_NAME = "snapshot-api-task-events"
RETRY_FIRST_SECONDS = 0.1
RETRY_MAX_SECONDS = 5.0
PING_SECONDS = 10.0

Connect = Callable[[], Awaitable[asyncpg.Connection]]


def parse_payload(payload: str) -> tuple[UUID, int] | None:
    """``'<task id>:<event_seq>'`` as the trigger sends it; ``None`` if malformed."""
    task_id, _, seq = payload.partition(":")
    try:
        return UUID(task_id), int(seq)
    except ValueError:
        return None


def connector(settings: Settings) -> Connect:
    """Opens the listening connection as the API's role (``SNAPSHOT_API_DB_ROLE``)."""

    async def connect() -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(
            settings.database_dsn,
            timeout=5,
            server_settings={"application_name": APPLICATION_NAME},
        )
        if settings.db_role:
            await conn.execute(f'SET ROLE "{settings.db_role}"')  # the pattern admits no quote
        return conn

    return connect


class TaskEventListener(BackgroundLoop):
    name = "task-event-listener"

    def __init__(
        self,
        connect: Connect,
        notify: Callable[[UUID, int], None],
        resync: Callable[[], None],
        ping_seconds: float = PING_SECONDS,
    ) -> None:
        """``notify(task_id, seq)`` for each notification, ``resync()`` each time listening
        (re)starts; both are called on the event loop and must not block."""
        super().__init__()
        self.connect = connect
        self.notify = notify
        self.resync = resync
        self.ping_seconds = ping_seconds
        self.listening = asyncio.Event()

    async def _run(self) -> None:
        pause = RETRY_FIRST_SECONDS
        first = True
        while True:
            try:
                conn = await self.connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - down, restarting, refusing: try again
                log.warning("task events: cannot listen (%s); again in %.1fs", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX_SECONDS)
                continue
            pause = RETRY_FIRST_SECONDS
            if not first:
                TASK_EVENTS_RECONNECTS.inc()
            first = False
            try:
                await self._listen(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - lost while setting up: reconnect
                log.warning("task events: listening failed (%s); reconnecting", exc)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    conn.terminate()

    async def _listen(self, conn: asyncpg.Connection) -> None:
        """Listen until the connection is lost."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(CHANNEL, self._on_notify)
        self.listening.set()
        self.resync()
        log.info("task events: listening on %s", CHANNEL)
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), self.ping_seconds)
            except TimeoutError:
                await conn.fetchval("SELECT 1", timeout=self.ping_seconds)
        log.warning("task events: the listening connection was lost; reconnecting")

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        parsed = parse_payload(payload)
        if parsed is None:
            log.warning("task events: ignoring a malformed notification %r", payload[:100])
            return
        self.notify(*parsed)
