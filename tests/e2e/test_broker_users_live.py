"""Both services as real processes, each connected as its own RabbitMQ user (issue 13, least
privilege on the broker), started in the awkward order: the renderer before the API."""

from __future__ import annotations

import json

import httpx
from support.broker_users import API_USER, RENDERER_USER, rabbitmqctl
from support.pdf import pdf_text
from support.stack import Stack
from support.waiting import until_sync


def connection_users() -> list[tuple[str, str]]:
    """(user, connection name) of every connection the broker has."""
    out = rabbitmqctl("list_connections", "user", "client_properties", "--formatter", "json")
    rows = json.loads(out)
    return [
        (row["user"], {k: v for k, _type, v in row["client_properties"]}.get("connection_name", ""))
        for row in rows
    ]


def test_a_snapshot_completes_with_each_service_on_its_own_broker_user(broker_users):
    stack = Stack(
        renderer_env={
            "SNAPSHOT_API_AMQP_URL": broker_users[API_USER],
            "SNAPSHOT_RENDERER_AMQP_URL": broker_users[RENDERER_USER],
        }
    )
    try:
        renderer = stack.start_renderer(wait=False)
        health = f"http://127.0.0.1:{renderer.metrics_port}/healthz"  # type: ignore[attr-defined]

        def waiting_for_the_api() -> bool:
            log = (stack.logs / "renderer1.log").read_text(errors="replace")
            try:
                unhealthy = httpx.get(health, timeout=2).status_code == 503
            except httpx.HTTPError:
                return False
            return unhealthy and "does not exist yet" in log

        until_sync(waiting_for_the_api, 60, "the renderer waiting for the API's queues")
        stack.start_api()
        stack.wait_renderer(renderer)  # consuming once the API declared its queues

        mine = [user for user, name in connection_users() if name.endswith(f"-{renderer.pid}")]
        assert mine and set(mine) == {RENDERER_USER}

        room = stack.call("POST", "/api/v1/rooms", "olivia", json={"name": "Least Privilege"})
        room_id = room.json()["id"]
        r = stack.call(
            "POST",
            f"/api/v1/rooms/{room_id}/messages",
            "olivia",
            json={"messages": [{"body": "Each service has its own broker user"}]},
        )
        assert r.status_code == 201, r.text
        accepted = stack.call("POST", f"/api/v1/rooms/{room_id}/snapshots", "olivia", json={})
        assert accepted.status_code == 202, accepted.text
        task = stack.wait_task(accepted.json()["task_id"], "olivia")
        assert task["status"] == "completed", task
        pdf = stack.call(
            "GET", f"/api/v1/snapshots/{accepted.json()['snapshot_id']}/download", "olivia"
        )
        assert pdf.status_code == 200
        text, pages = pdf_text(pdf.content)
        assert "Least Privilege" in text and "Each service has its own broker user" in text
        assert pages >= 1
        assert API_USER in {user for user, _ in connection_users()}
    finally:
        stack.stop()
