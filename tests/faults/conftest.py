"""Fixtures shared by the fault tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.holds import Holds


@pytest.fixture(scope="module")
def holds() -> Iterator[Holds]:
    """Holds renders of rooms named with ``support.holds.MARKER`` until a test releases them."""
    h = Holds()
    try:
        yield h
    finally:
        h.close()
