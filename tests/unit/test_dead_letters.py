"""Reading why RabbitMQ dead-lettered a job, from the headers it adds (shapes as seen on 3.10)."""

from __future__ import annotations

import datetime as dt

from snapshot_api.messaging.dead_letters import death_reason

AT = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def death(reason: str, queue: str) -> dict[str, object]:
    return {"count": 1, "reason": reason, "queue": queue, "time": AT, "exchange": ""}


def test_the_latest_death_counts_not_the_first() -> None:
    headers = {
        "x-death": [death("delivery_limit", "render.jobs"), death("expired", "retry.1s")],
        "x-first-death-reason": "expired",
    }
    assert death_reason(headers) == "delivery_limit"


def test_a_rejected_job() -> None:
    assert death_reason({"x-death": [death("rejected", "render.jobs")]}) == "rejected"


def test_bytes_and_missing_headers() -> None:
    assert death_reason({"x-death": [{"reason": b"rejected"}]}) == "rejected"
    assert death_reason({"x-first-death-reason": "delivery_limit"}) == "delivery_limit"
    assert death_reason(None) == "unknown"
    assert death_reason({"x-death": "garbage"}) == "unknown"
