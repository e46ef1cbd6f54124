"""Fixtures for every tier: a fresh database and a queue prefix per test module, and the
connections and webhook receiver that tests of several modules and tiers share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractChannel
from support.broker_users import ensure_broker_users
from support.services import AMQP_URL, create_database, drop_database, own_prefix
from support.webhook_receiver import Receiver


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    dsn = create_database()
    try:
        yield dsn
    finally:
        drop_database(dsn)


@pytest.fixture(scope="module")
def queue_prefix() -> Iterator[str]:
    with own_prefix("t") as prefix:
        yield prefix


@pytest.fixture(scope="session")
def broker_users() -> dict[str, str]:
    """``snapshot-api`` and ``snapshot-renderer`` exist on the broker (created by the same
    script as ``make run``; CI starts from a clean checkout): their AMQP URLs by user name."""
    return ensure_broker_users()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the module's database, to read and change rows behind the API."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def channel() -> AsyncIterator[AbstractChannel]:
    """A plain channel (no publisher confirms) on the suite's broker, as the guest user.
    Modules that need another kind (a declared topology, confirms) define their own."""
    conn = await aio_pika.connect(AMQP_URL)
    try:
        yield await conn.channel()
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1, listening for the whole module."""
    r = Receiver()
    r.start()
    try:
        yield r
    finally:
        r.stop()
