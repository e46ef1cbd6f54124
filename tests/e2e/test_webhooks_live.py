"""A webhook from the real pipeline: API and renderer processes, a real render, and a receiver
on 127.0.0.1 that verifies the event with the reference ``standardwebhooks`` library."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from support.pdf import pdf_text
from support.stack import Stack, running
from support.waiting import until_sync
from support.webhook_receiver import Receiver


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running(SNAPSHOT_API_WEBHOOK_ALLOW_LOOPBACK="true") as s:
        yield s


def test_a_rendered_snapshot_is_announced_with_a_verifiable_event(
    stack: Stack, receiver: Receiver
) -> None:
    secret = stack.call("POST", "/api/v1/webhooks/secret", "olivia").json()["secret"]
    room = stack.call("POST", "/api/v1/rooms", "olivia", json={"name": "Launch review"}).json()
    messages = [{"body": f"Checklist item {i}: signed off"} for i in range(12)]
    r = stack.call(
        "POST", f"/api/v1/rooms/{room['id']}/messages", "olivia", json={"messages": messages}
    )
    assert r.status_code == 201
    r = stack.call(
        "POST",
        f"/api/v1/rooms/{room['id']}/snapshots",
        "olivia",
        json={"callback_url": receiver.url},
    )
    assert r.status_code == 202, r.text
    accepted = r.json()

    def announced() -> dict | None:
        for got in receiver.received:
            event = got.verify(secret)
            if event["data"]["snapshot_id"] == accepted["snapshot_id"]:
                return event
        return None

    event = until_sync(announced, timeout=120, what="the webhook")
    assert event["type"] == "snapshot.completed"
    assert event["data"]["task_id"] == accepted["task_id"]
    pdf = stack.call("GET", event["data"]["download_url"], "olivia")
    assert pdf.status_code == 200
    assert hashlib.sha256(pdf.content).hexdigest() == event["data"]["pdf_sha256"]
    text, pages = pdf_text(pdf.content)
    assert "Launch review" in text and "Checklist item 11" in text
    assert pages == event["data"]["pages"]
    listed = stack.call("GET", "/api/v1/webhooks/deliveries", "olivia").json()["items"]
    assert [(d["status"], d["attempts"]) for d in listed] == [("delivered", 1)]
