"""Per-key render locks on the store volume: exclusive, and no lock file left on any exit."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from snapshot_renderer.cache.lock import KeyLocks
from snapshot_renderer.errors import StoreError

KEY = hashlib.sha256(b"k").hexdigest()


class RenderFailed(Exception):
    pass


async def test_a_failed_render_leaves_no_lock_file(tmp_path: Path) -> None:
    locks = KeyLocks(tmp_path)
    with pytest.raises(RenderFailed):
        async with locks.hold(KEY, timeout=5):
            assert (tmp_path / ".locks" / f"{KEY}.lock").exists()
            raise RenderFailed

    assert list((tmp_path / ".locks").iterdir()) == []


async def test_a_successful_hold_leaves_no_lock_file(tmp_path: Path) -> None:
    locks = KeyLocks(tmp_path)
    async with locks.hold(KEY, timeout=5):
        pass

    assert list((tmp_path / ".locks").iterdir()) == []


async def test_the_lock_is_exclusive_while_held(tmp_path: Path) -> None:
    locks = KeyLocks(tmp_path)
    async with locks.hold(KEY, timeout=5):
        with pytest.raises(StoreError):
            async with KeyLocks(tmp_path).hold(KEY, timeout=0):
                pass
        assert (tmp_path / ".locks" / f"{KEY}.lock").exists()  # the loser removed nothing
