"""The broker, the database and the API go away and come back: nothing accepted is lost.

DESIGN §7 guarantee 1 (outbox + relay, durable status queue) and issue 3 items 1, 3 and 9.
These tests stop the machine's shared RabbitMQ/PostgreSQL and always restore them.
"""

from __future__ import annotations

import signal
import threading

import httpx
import pytest
from support.holds import MARKER
from support.metrics import scrape
from support.outages import broker_down, database_down
from support.stack import Stack, running
from support.waiting import until_sync


@pytest.fixture(scope="module")
def stack(holds):
    with running(**holds.env) as s:
        yield s


def new_room(stack: Stack, name: str, n: int = 5) -> str:
    room = stack.call("POST", "/api/v1/rooms", "olivia", json={"name": name}).json()["id"]
    r = stack.call(
        "POST",
        f"/api/v1/rooms/{room}/messages",
        "olivia",
        json={"messages": [{"body": f"{name} {i}"} for i in range(n)]},
    )
    assert r.status_code == 201
    return room


def get(stack: Stack, path: str) -> httpx.Response:
    with httpx.Client(base_url=stack.base, timeout=15) as c:
        return c.get(path, headers=stack.auth("olivia"))


def test_broker_down_at_request_time_still_202_then_completes(stack):
    room = new_room(stack, "Broker outage")
    with broker_down():
        r = stack.call("POST", f"/api/v1/rooms/{room}/snapshots", "olivia", json={})
        assert r.status_code == 202, r.text
        ready = until_sync(
            lambda: (answer := get(stack, "/readyz")).status_code == 503 and answer,
            what="/readyz to report the broker down",
        )
        assert ready.status_code == 503 and ready.json()["checks"]["broker"] == "down"
        assert get(stack, "/healthz").status_code == 200
        task = get(stack, f"/api/v1/tasks/{r.json()['task_id']}").json()
        assert task["status"] == "queued"
    task = stack.wait_task(r.json()["task_id"], "olivia", timeout=180)
    assert task["status"] == "completed", task
    stack.wait_ready()


def renderer_completions(stack: Stack) -> float:
    url = f"http://127.0.0.1:{stack.renderers[0].metrics_port}/metrics"
    return scrape(url, "snapshot_renderer_job_outcomes_total", outcome="completed")


def test_api_restart_applies_status_events_that_arrived_meanwhile(stack, holds):
    room = new_room(stack, f"API restart {MARKER}", 120)
    completed_before = renderer_completions(stack)
    r = stack.call("POST", f"/api/v1/rooms/{room}/snapshots", "olivia", json={})
    assert r.status_code == 202
    held = holds.next_sync()  # the render is in progress and waits for us
    assert stack.api is not None
    stack.api.send_signal(signal.SIGTERM)
    assert stack.api.wait(30) == 0
    held.release()  # the renderer finishes while the API is away
    until_sync(
        lambda: renderer_completions(stack) > completed_before,
        120,
        "the renderer to complete the job (its completed event queued for the API)",
    )
    stack.start_api()
    task = stack.wait_task(r.json()["task_id"], "olivia")
    assert (task["status"], task["progress"]) == ("completed", 100)


def test_database_restart_gives_503_problems_and_recovers_without_restart(stack):
    room = new_room(stack, "Database restart", 150)
    r = stack.call("POST", f"/api/v1/rooms/{room}/snapshots", "olivia", json={})
    assert r.status_code == 202
    with database_down():
        for path in (f"/api/v1/rooms/{room}", f"/api/v1/tasks/{r.json()['task_id']}"):
            answer = get(stack, path)
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == "unavailable"
            assert "retry-after" in answer.headers
        ready = get(stack, "/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] == "down"
    task = stack.wait_task(r.json()["task_id"], "olivia", timeout=180)
    assert task["status"] == "completed"
    assert get(stack, f"/api/v1/rooms/{room}").status_code == 200
    assert get(stack, "/readyz").status_code == 200


def test_sigterm_to_the_api_drains_the_request_in_flight(stack):
    room = new_room(stack, "API drain")
    first_chunk_sent = threading.Event()
    release = threading.Event()
    answer: dict = {}

    def body():
        yield b'{"messages": ['
        first_chunk_sent.set()
        release.wait(30)
        yield b",".join(b'{"body": "drained %d"}' % i for i in range(50)) + b"]}"

    def upload():
        with httpx.Client(base_url=stack.base, timeout=60) as c:
            answer["response"] = c.post(
                f"/api/v1/rooms/{room}/messages",
                content=body(),
                headers={**stack.auth("olivia"), "Content-Type": "application/json"},
            )

    sender = threading.Thread(target=upload)
    sender.start()
    assert first_chunk_sent.wait(30)
    assert stack.api is not None
    stack.api.send_signal(signal.SIGTERM)
    release.set()
    sender.join(60)
    assert stack.api.wait(30) == 0
    stack.start_api()
    assert answer["response"].status_code == 201, answer["response"].text
    assert len(answer["response"].json()) == 50


def test_the_api_starts_while_the_database_is_down(stack):
    """A worker starting while PostgreSQL is down must not stop the API (uvicorn stops every
    worker when one fails its start-up): it answers 503 until the database is back."""
    room = new_room(stack, "Start without a database")
    assert stack.api is not None
    stack.api.send_signal(signal.SIGTERM)
    assert stack.api.wait(30) == 0
    with database_down():
        stack.api = stack.spawn_api()
        until_sync(lambda: _answers(stack, "/healthz") == 200, 60, "the API to come up")
        answer = get(stack, f"/api/v1/rooms/{room}")
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "unavailable"
        ready = get(stack, "/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"] == "down"
        assert stack.api.poll() is None
    stack.wait_ready()
    assert get(stack, f"/api/v1/rooms/{room}").status_code == 200


def _answers(stack: Stack, path: str) -> int | None:
    try:
        return get(stack, path).status_code
    except httpx.HTTPError:
        return None
