"""Fixtures for every tier: a fresh database and a queue prefix per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.broker_users import ensure_broker_users
from support.services import create_database, delete_topology, drop_database, unique


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    dsn = create_database()
    try:
        yield dsn
    finally:
        drop_database(dsn)


@pytest.fixture(scope="module")
def queue_prefix() -> Iterator[str]:
    prefix = unique("t") + "."
    try:
        yield prefix
    finally:
        delete_topology(prefix)


@pytest.fixture(scope="session")
def broker_users() -> dict[str, str]:
    """``snapshot-api`` and ``snapshot-renderer`` exist on the broker (created by the same
    script as ``make run``; CI starts from a clean checkout): their AMQP URLs by user name."""
    return ensure_broker_users()
