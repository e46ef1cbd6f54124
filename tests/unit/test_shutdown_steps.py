"""A worker's shutdown goes on past a step that never finishes (and says which)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from snapshot_api import main


async def test_a_hanging_step_is_abandoned_and_named(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(main, "SHUTDOWN_STEP_SECONDS", 0.05)
    never = asyncio.Event()
    finished: list[str] = []

    async def next_step() -> None:
        finished.append("next")

    with caplog.at_level(logging.ERROR, logger="snapshot_api.main"):
        await main._bounded(never.wait(), "the stuck step")
        await main._bounded(next_step(), "the next step")

    assert finished == ["next"]
    assert "the stuck step did not finish" in caplog.text


async def test_a_failing_step_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="snapshot_api.main"):
        await main._bounded(broken(), "the broken step")

    assert "shutdown: the broken step failed" in caplog.text
