"""The whole product path with both services as real processes (DESIGN §1, issue: pipeline)."""

from __future__ import annotations

import signal

import pytest
from support.pdf import pdf_text
from support.stack import Stack, running

MESSAGES = [
    f"Timeline entry {i:02d}: budget line {i * 7} reviewed and " + "agreed " * (i % 9)
    for i in range(60)
]


@pytest.fixture(scope="module")
def stack():
    with running() as s:
        yield s


def _snapshot(stack: Stack, room: str, user: str) -> dict:
    r = stack.call("POST", f"/api/v1/rooms/{room}/snapshots", user, json={})
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/api/v1/tasks/{r.json()['task_id']}"
    return r.json()


def test_room_to_pdf_with_cache_layers(stack):
    r = stack.call("POST", "/api/v1/rooms", "olivia", json={"name": "Quarterly Planning"})
    room = r.json()["id"]
    for user, role in (("eddie", "editor"), ("vera", "viewer"), ("otto", "owner")):
        assert (
            stack.call(
                "PUT",
                f"/api/v1/rooms/{room}/members/{user}",
                "olivia",
                json={"role": role, "display_name": f"{user.title()} Example"},
            ).status_code
            == 201
        )
    r = stack.call(
        "POST",
        f"/api/v1/rooms/{room}/messages",
        "eddie",
        json={"messages": [{"body": m} for m in MESSAGES]},
    )
    assert r.status_code == 201 and len(r.json()) == 60

    first = _snapshot(stack, room, "eddie")
    assert first["status"] == "queued"
    task = stack.wait_task(first["task_id"], "vera")
    assert task["status"] == "completed", task
    assert (task["cache"], task["progress"]) == ("miss", 100)
    d = stack.call("GET", f"/api/v1/snapshots/{first['snapshot_id']}/download", "vera")
    assert d.status_code == 200 and d.headers["content-type"] == "application/pdf"
    assert d.headers["etag"] and "quarterly-planning" in d.headers["content-disposition"]
    text, pages = pdf_text(d.content)
    assert "Quarterly Planning" in text
    assert "Eddie Example" in text and "Viewer" in text  # member table: name and role
    assert MESSAGES[0].strip() in text and MESSAGES[-1].strip() in text
    assert pages > 1

    again = _snapshot(stack, room, "olivia")
    assert again["content_hash"] == first["content_hash"]
    assert stack.wait_task(again["task_id"], "olivia")["cache"] == "memory"
    same = stack.call("GET", f"/api/v1/snapshots/{again['snapshot_id']}/download", "olivia")
    assert same.content == d.content

    old = stack.renderers[0]
    assert stack.stop_renderer(old, signal.SIGTERM) == 0
    stack.start_renderer()
    disk = _snapshot(stack, room, "olivia")
    assert stack.wait_task(disk["task_id"], "olivia")["cache"] == "disk"

    stack.call("POST", f"/api/v1/rooms/{room}/messages", "olivia", json={"body": "One more thing"})
    changed = _snapshot(stack, room, "olivia")
    assert changed["content_hash"] != first["content_hash"]
    task = stack.wait_task(changed["task_id"], "olivia")
    assert (task["status"], task["cache"]) == ("completed", "miss")
    text, _ = pdf_text(
        stack.call("GET", f"/api/v1/snapshots/{changed['snapshot_id']}/download", "olivia").content
    )
    assert "One more thing" in text

    assert stack.call("POST", f"/api/v1/rooms/{room}/snapshots", "vera", json={}).status_code == 403
    assert (
        stack.call("POST", f"/api/v1/rooms/{room}/snapshots", "mallory", json={}).status_code == 404
    )
    assert stack.call("POST", f"/api/v1/rooms/{room}/snapshots", None, json={}).status_code == 401
