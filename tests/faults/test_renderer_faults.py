"""Renderers killed, stopped and fed poison: every accepted snapshot still ends clearly.

DESIGN §7 guarantees 1-3, with both services as real processes.
"""

from __future__ import annotations

import signal
import time

import pytest
from support.pdf import pdf_text
from support.stack import Stack, running

CRASH_MARKER = "crash-test-marker-7f3a"


@pytest.fixture(scope="module")
def stack():
    with running(
        SNAPSHOT_API_DELIVERY_LIMIT="2",
        SNAPSHOT_RENDERER_DELIVERY_LIMIT="2",
        SNAPSHOT_RENDERER_CRASH_TEST_MARKER=CRASH_MARKER,
        SNAPSHOT_RENDERER_SHUTDOWN_GRACE_SECONDS="60",
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


def wait_phase(stack: Stack, task_id: str, phase: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        task = stack.call("GET", f"/api/v1/tasks/{task_id}", "olivia").json()
        if task["phase"] == phase:
            return
        assert task["status"] not in ("completed", "failed"), task
        time.sleep(0.05)
    raise AssertionError(f"task never reached phase {phase}")


def stored_pdfs(stack: Stack) -> list:
    return sorted(stack.store.glob("??/??/*.pdf"))


def test_renderer_killed_mid_render_is_redelivered_and_completes_once(stack):
    room = room_with(stack, "Killed mid-render", 400)
    before = stored_pdfs(stack)
    accepted = snapshot(stack, room)
    wait_phase(stack, accepted["task_id"], "rendering")
    stack.stop_renderer(stack.renderers[0], signal.SIGKILL)
    stack.start_renderer()
    task = stack.wait_task(accepted["task_id"], "olivia", timeout=180)
    assert (task["status"], task["cache"]) == ("completed", "miss"), task
    assert len(stored_pdfs(stack)) == len(before) + 1
    d = stack.call("GET", f"/api/v1/snapshots/{accepted['snapshot_id']}/download", "olivia")
    text, pages = pdf_text(d.content)
    assert "Killed mid-render message 399:" in text and pages > 10


def test_sigterm_finishes_the_in_flight_render_and_exits_cleanly(stack):
    room = room_with(stack, "Graceful stop", 250)
    accepted = snapshot(stack, room)
    wait_phase(stack, accepted["task_id"], "rendering")
    started = time.monotonic()
    assert stack.stop_renderer(stack.renderers[0], signal.SIGTERM) == 0
    assert time.monotonic() - started < 60
    task = stack.call("GET", f"/api/v1/tasks/{accepted['task_id']}", "olivia").json()
    if task["status"] != "completed":  # handed back: the next renderer finishes it
        stack.start_renderer()
        task = stack.wait_task(accepted["task_id"], "olivia")
    else:
        stack.start_renderer()
    assert task["status"] == "completed", task


def test_poison_job_fails_clearly_after_bounded_deliveries(stack):
    room = room_with(stack, f"Poison {CRASH_MARKER}", 3)
    accepted = snapshot(stack, room)
    task = stack.wait_task(accepted["task_id"], "olivia", timeout=180)
    assert task["status"] == "failed"
    assert task["error"]["code"] == "delivery_limit_exceeded", task
    healthy = snapshot(stack, room_with(stack, "After the poison", 3))
    assert stack.wait_task(healthy["task_id"], "olivia")["status"] == "completed"
