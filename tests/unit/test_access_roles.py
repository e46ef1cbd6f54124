"""The role rule has one home (services/access.py): SQL gets the roles as a parameter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from snapshot_api.errors import Forbidden
from snapshot_api.services.access import ROLE_RANK, check_rank, roles_at_least

DB = Path(__file__).parents[2] / "api-service" / "src" / "snapshot_api" / "db"


def test_roles_at_least_follow_the_rank() -> None:
    assert roles_at_least("viewer") == ["viewer", "editor", "owner"]
    assert roles_at_least("editor") == ["editor", "owner"]
    assert roles_at_least("owner") == ["owner"]


def test_check_rank_refuses_a_lower_role() -> None:
    assert check_rank("owner", "editor") == "owner"
    with pytest.raises(Forbidden, match="needs the editor role or higher; you are viewer"):
        check_rank("viewer", "editor")


def test_no_rank_comparison_in_sql() -> None:
    """A set of roles spelled out in SQL (``role IN ('editor', ...)``) is a second home."""
    roles = "|".join(ROLE_RANK)
    pattern = re.compile(rf"role\s+IN\s*\(\s*'({roles})'", re.IGNORECASE)
    found = {p.name for p in DB.glob("*.py") if pattern.search(p.read_text())}
    assert found == set()
