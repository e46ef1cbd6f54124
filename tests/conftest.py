"""Fixtures for every tier: a fresh database and a queue prefix per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
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
