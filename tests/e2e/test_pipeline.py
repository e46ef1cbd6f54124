"""The whole product path with both services as real processes (DESIGN §1, issue: pipeline),
driven through the shared typed client (``snapshot_client``) as users of the API would."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from snapshot_client import Client, SnapshotAccepted
from snapshot_client.errors import Forbidden, NotFound, Unauthorized
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


def _snapshot(client: Client, room: str) -> SnapshotAccepted:
    accepted = client.create_snapshot(room)
    assert accepted.links["task"] == f"/api/v1/tasks/{accepted.task_id}"
    return accepted


def test_room_to_pdf_with_cache_layers(stack: Stack, tmp_path: Path):
    olivia, eddie, vera = (
        stack.client_for("olivia"),
        stack.client_for("eddie"),
        stack.client_for("vera"),
    )
    room = olivia.create_room("Quarterly Planning").id
    for user, role in (("eddie", "editor"), ("vera", "viewer"), ("otto", "owner")):
        member = olivia.put_member(room, user, role, f"{user.title()} Example")
        assert (member.user_id, member.role) == (user, role)
    assert len(eddie.add_messages(room, MESSAGES)) == 60

    first = _snapshot(eddie, room)
    assert first.status == "queued"
    task = vera.wait(first.task_id, timeout=120)
    assert task.status == "completed", stack.log_tail()
    assert (task.cache, task.progress) == ("miss", 100)
    saved = vera.download(first.snapshot_id, tmp_path)
    assert saved.etag and saved.filename and "quarterly-planning" in saved.filename
    assert saved.path == tmp_path / saved.filename
    pdf = saved.path.read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) == saved.bytes
    text, pages = pdf_text(pdf)
    assert "Quarterly Planning" in text
    assert "Eddie Example" in text and "Viewer" in text  # member table: name and role
    assert MESSAGES[0].strip() in text and MESSAGES[-1].strip() in text
    assert pages > 1

    again = _snapshot(olivia, room)
    assert again.content_hash == first.content_hash
    assert olivia.wait(again.task_id, timeout=120).cache == "memory"
    assert olivia.download(again.snapshot_id, tmp_path / "again.pdf").path.read_bytes() == pdf

    old = stack.renderers[0]
    assert stack.stop_renderer(old, signal.SIGTERM) == 0
    stack.start_renderer()
    disk = _snapshot(olivia, room)
    assert olivia.wait(disk.task_id, timeout=120).cache == "disk"

    olivia.add_messages(room, ["One more thing"])
    changed = _snapshot(olivia, room)
    assert changed.content_hash != first.content_hash
    task = olivia.wait(changed.task_id, timeout=120)
    assert (task.status, task.cache) == ("completed", "miss")
    text, _ = pdf_text(olivia.download(changed.snapshot_id, tmp_path / "c.pdf").path.read_bytes())
    assert "One more thing" in text

    with pytest.raises(Forbidden):
        vera.create_snapshot(room)
    with pytest.raises(NotFound):
        stack.client_for("mallory").create_snapshot(room)
    with pytest.raises(Unauthorized):
        stack.client_for(None).create_snapshot(room)
    for client in (olivia, eddie, vera):
        client.close()
