"""A renderer replica killed while its document job waits for pieces (issue 11): the job is
redelivered, the pieces done by then are cache hits, and the snapshot completes once."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

import httpx
import pytest
from support.holds import MARKER, Holds, releasing
from support.metrics import scrape
from support.pdf import pdf_text
from support.stack import Stack, running

NUMBER = re.compile(r"piece fault message (\d{3})")
MESSAGES = 300  # 6 chunks of 50 in one section, and the cover: 7 pieces


@pytest.fixture(scope="module")
def stack(holds: Holds) -> Iterator[Stack]:
    with running(
        renderers=2,
        SNAPSHOT_RENDERER_PIECES_MIN_MESSAGES="100",
        SNAPSHOT_RENDERER_SHUTDOWN_GRACE_SECONDS="5",
        **holds.env,
    ) as s:
        yield s


def jobs_in_flight(proc: object) -> int:
    port = proc.metrics_port  # type: ignore[attr-defined]
    return int(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["jobs_in_flight"])


def test_killing_the_replica_that_waits_for_the_pieces_costs_only_a_redelivery(
    stack: Stack, holds: Holds
) -> None:
    room = stack.call("POST", "/api/v1/rooms", "olivia", json={"name": f"Pieces {MARKER}"})
    room_id = room.json()["id"]
    bodies = [
        {"body": f"piece fault message {i:03d} " + "lorem ipsum " * 12} for i in range(MESSAGES)
    ]
    r = stack.call("POST", f"/api/v1/rooms/{room_id}/messages", "olivia", json={"messages": bodies})
    assert r.status_code == 201, r.text
    applied = scrape(
        stack.base + "/metrics",
        "snapshot_api_status_events_total",
        event="completed",
        applied="true",
    )
    accepted = stack.call("POST", f"/api/v1/rooms/{room_id}/snapshots", "olivia", json={})
    assert accepted.status_code == 202, accepted.text
    first = holds.next_sync()  # a piece is being rendered, held in the hook
    waiting = [p for p in stack.renderers if jobs_in_flight(p) == 1]
    assert len(waiting) == 1  # exactly one replica holds the document job
    stack.stop_renderer(waiting[0], signal.SIGKILL)
    with releasing(holds):
        first.release()
        stack.start_renderer()
        task = stack.wait_task(accepted.json()["task_id"], "olivia", timeout=300)
    assert (task["status"], task["cache"]) == ("completed", "miss"), task
    after = scrape(
        stack.base + "/metrics",
        "snapshot_api_status_events_total",
        event="completed",
        applied="true",
    )
    assert after == applied + 1  # completed exactly once
    # 7 pieces; only a piece the killed replica's worker had started is rendered again
    assert 7 <= holds.count <= 8, holds.count
    d = stack.call("GET", f"/api/v1/snapshots/{accepted.json()['snapshot_id']}/download", "olivia")
    text, _ = pdf_text(d.content)
    assert [int(n) for n in NUMBER.findall(text)] == list(range(MESSAGES))
