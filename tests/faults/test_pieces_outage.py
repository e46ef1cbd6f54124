"""A section's replies lost to a broker outage (issue 11, commit 6689b1d): the renderer that
rendered a piece cannot answer while its connection is gone; the section waits for the channel
to reopen or goes back to the queue, the document still completes once with the right text,
and no section delivery stays unsettled (with one worker, one would stop every big room).

The outage is the renderer's alone: the broker closes its connection and accepts no new one
until the test lets it (``support.outages.connection_cut``), so the piece finishes and tries to
answer while the renderer is cut off, whatever the machine's speed.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import pytest
from support.holds import MARKER, Holds, releasing
from support.metrics import completions_applied
from support.outages import connection_cut, queue_depth
from support.pdf import pdf_text
from support.stack import Stack, running
from support.waiting import until_sync

NUMBER = re.compile(r"reply outage message (\d{3})")
MESSAGES = 300  # 6 chunks of 50 in one section, and the cover: 7 pieces in 2 sections
RENDERER = f"pieces-outage-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def stack(holds: Holds) -> Iterator[Stack]:
    # one renderer with one worker: a section delivery left unsettled holds its only prefetch.
    # A reply published after the reconnect but before this renderer's reply queue is declared
    # again (the channels come back in no set order) is unroutable: it is sent again for a few
    # seconds (sections.REPLY_ROUTE_DELAYS). Were it dropped as "the sender is gone", the
    # document would wait the default PIECE_WAIT_SECONDS (300) for it: longer than this
    # test's waits, so the test fails when that race comes up (it does not in every run).
    with running(
        SNAPSHOT_RENDERER_PIECES_MIN_MESSAGES="100",
        SNAPSHOT_RENDERER_RENDERER_ID=RENDERER,
        **holds.env,
    ) as s:
        yield s


def big_room(stack: Stack, name: str) -> str:
    room = stack.call("POST", "/api/v1/rooms", "olivia", json={"name": name}).json()["id"]
    bodies = [
        {"body": f"reply outage message {i:03d} " + "lorem ipsum " * 12} for i in range(MESSAGES)
    ]
    r = stack.call("POST", f"/api/v1/rooms/{room}/messages", "olivia", json={"messages": bodies})
    assert r.status_code == 201, r.text
    return str(room)


def stored_pieces(stack: Stack) -> int:
    return sum("piece" in json.loads(p.read_text()) for p in stack.store.glob("??/??/*.json"))


def snapshot_text(stack: Stack, snapshot_id: str) -> str:
    d = stack.call("GET", f"/api/v1/snapshots/{snapshot_id}/download", "olivia")
    assert d.status_code == 200, d.text
    return pdf_text(d.content)[0]


def test_section_replies_lost_to_a_broker_outage_still_complete_the_document_once(
    stack: Stack, holds: Holds
) -> None:
    room = big_room(stack, f"Reply outage {MARKER}")
    applied = completions_applied(stack.base)
    accepted = stack.call("POST", f"/api/v1/rooms/{room}/snapshots", "olivia", json={})
    assert accepted.status_code == 202, accepted.text
    held = holds.next_sync()  # a piece (the cover's section goes out first) in its worker
    pieces = stored_pieces(stack)
    with connection_cut(f"renderer {RENDERER}"):
        held.release()
        # the piece is stored before its reply is sent: that reply has no channel to go on
        until_sync(lambda: stored_pieces(stack) > pieces, 60, "the held piece to be stored")
    with releasing(holds):
        task = stack.wait_task(accepted.json()["task_id"], "olivia", timeout=240)
        # the job's own delivery went back to the queue with the connection: its second
        # delivery follows the render in progress, and may be the first to report it ("memory")
        assert task["status"] == "completed" and task["cache"] in ("miss", "memory"), task
        assert completions_applied(stack.base) == applied + 1  # completed exactly once
        # nothing of render.pieces left behind, ready or delivered and never settled
        pieces_queue = f"{stack.prefix}render.pieces"
        until_sync(lambda: queue_depth(pieces_queue) == (0, 0), 60, "render.pieces to drain")
        # the one worker's section consumer goes on to the next big room
        second = big_room(stack, "After the outage")
        other = stack.call("POST", f"/api/v1/rooms/{second}/snapshots", "olivia", json={})
        assert other.status_code == 202, other.text
        after = stack.wait_task(other.json()["task_id"], "olivia", timeout=240)
    assert (after["status"], after["cache"]) == ("completed", "miss"), after
    assert holds.count == 7, holds.count  # 7 pieces, none rendered twice
    text = snapshot_text(stack, accepted.json()["snapshot_id"])
    assert [int(n) for n in NUMBER.findall(text)] == list(range(MESSAGES))
    text = snapshot_text(stack, other.json()["snapshot_id"])
    assert [int(n) for n in NUMBER.findall(text)] == list(range(MESSAGES))
