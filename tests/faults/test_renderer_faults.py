"""Renderers killed, stopped and fed poison: every accepted snapshot still ends clearly.

DESIGN §7 guarantees 1-3, with both services as real processes.
"""

from __future__ import annotations

import os
import signal

import httpx
import pytest
from support.holds import MARKER
from support.metrics import completions_applied
from support.pdf import pdf_text
from support.stack import Stack, running
from support.waiting import until_sync

CRASH_MARKER = "crash-test-marker-7f3a"


@pytest.fixture(scope="module")
def stack(holds):
    with running(
        SNAPSHOT_API_DELIVERY_LIMIT="2",
        SNAPSHOT_RENDERER_DELIVERY_LIMIT="2",
        SNAPSHOT_RENDERER_CRASH_TEST_MARKER=CRASH_MARKER,
        SNAPSHOT_RENDERER_SHUTDOWN_GRACE_SECONDS="60",
        # one render of the whole room in one worker: pieces have a test module of their own
        SNAPSHOT_RENDERER_PIECES_MIN_MESSAGES="100000",
        **holds.env,
    ) as s:
        yield s


def room_with(stack: Stack, name: str, n: int) -> str:
    room = stack.call("POST", "/api/v1/rooms", "olivia", json={"name": name}).json()["id"]
    bodies = [f"{name} message {i}: " + "lorem ipsum dolor sit amet " * 6 for i in range(n)]
    for i in range(0, n, 500):
        r = stack.call(
            "POST",
            f"/api/v1/rooms/{room}/messages",
            "olivia",
            json={"messages": [{"body": b} for b in bodies[i : i + 500]]},
        )
        assert r.status_code == 201
    return room


def snapshot(stack: Stack, room: str) -> dict:
    r = stack.call("POST", f"/api/v1/rooms/{room}/snapshots", "olivia", json={})
    assert r.status_code == 202, r.text
    return r.json()


def stored_pdfs(stack: Stack) -> list:
    return sorted(stack.store.glob("??/??/*.pdf"))


def renderer_stopping(proc) -> bool:
    """The renderer has begun its shutdown: it no longer consumes, so /healthz is not 200."""
    try:
        url = f"http://127.0.0.1:{proc.metrics_port}/healthz"
        return httpx.get(url, timeout=5).status_code != 200
    except httpx.HTTPError:
        return True


def test_renderer_killed_mid_render_is_redelivered_and_completes_once(stack, holds):
    room = room_with(stack, f"Killed mid-render {MARKER}", 400)
    before, applied = stored_pdfs(stack), completions_applied(stack.base)
    accepted = snapshot(stack, room)
    first = holds.next_sync()  # the render is in progress, held in the hook
    stack.stop_renderer(stack.renderers[0], signal.SIGKILL)  # its worker dies with it
    stack.start_renderer()
    second = holds.next_sync(60)  # the job was redelivered and is being rendered again
    assert second.pid != first.pid
    second.release()
    task = stack.wait_task(accepted["task_id"], "olivia", timeout=180)
    assert (task["status"], task["cache"]) == ("completed", "miss"), task
    assert len(stored_pdfs(stack)) == len(before) + 1
    assert completions_applied(stack.base) == applied + 1  # completed exactly once
    d = stack.call("GET", f"/api/v1/snapshots/{accepted['snapshot_id']}/download", "olivia")
    text, pages = pdf_text(d.content)
    assert f"Killed mid-render {MARKER} message 399:" in text and pages > 10


def test_sigterm_finishes_the_in_flight_render_and_exits_cleanly(stack, holds):
    room = room_with(stack, f"Graceful stop {MARKER}", 250)
    accepted = snapshot(stack, room)
    held = holds.next_sync()  # the render is in progress, held in the hook
    renderer = stack.renderers[0]
    os.killpg(renderer.pid, signal.SIGTERM)
    until_sync(lambda: renderer_stopping(renderer), what="the renderer to begin stopping")
    held.release()  # the render finishes during the shutdown grace period
    assert renderer.wait(60) == 0
    stack.renderers.remove(renderer)
    task = stack.wait_task(accepted["task_id"], "olivia", 60)  # no renderer runs: this one did it
    assert (task["status"], task["cache"]) == ("completed", "miss"), task
    stack.start_renderer()


def test_poison_job_fails_clearly_after_bounded_deliveries(stack):
    room = room_with(stack, f"Poison {CRASH_MARKER}", 3)
    accepted = snapshot(stack, room)
    task = stack.wait_task(accepted["task_id"], "olivia", timeout=180)
    assert task["status"] == "failed"
    assert task["error"]["code"] == "delivery_limit_exceeded", task
    healthy = snapshot(stack, room_with(stack, "After the poison", 3))
    assert stack.wait_task(healthy["task_id"], "olivia")["status"] == "completed"
