"""Signed webhooks against the real PostgreSQL and RabbitMQ: status events go through the broker
to the API's status consumer, the tasks trigger writes the delivery, the delivery loop sends it
to a receiver on 127.0.0.1 that verifies it with the reference ``standardwebhooks`` library."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractChannel
from snapshot_shared.messages import EventError
from standardwebhooks.webhooks import WebhookVerificationError
from support.api import Api, running_api, settings_for
from support.security import complete_on
from support.sse import publish, status_event
from support.waiting import until
from support.webhook_receiver import Receiver

MAX_ATTEMPTS = 4


@pytest.fixture
async def api(database_url: str, queue_prefix: str, tmp_path: Any) -> AsyncIterator[Api]:
    settings = settings_for(
        database_url,
        queue_prefix,
        tmp_path,
        webhook_allow_loopback=True,
        webhook_max_attempts=MAX_ATTEMPTS,
        webhook_backoff_seconds=0.1,
        webhook_poll_seconds=0.1,
        webhook_timeout_seconds=5,
    )
    async with running_api(settings) as api:
        yield api


async def new_secret(api: Api, user: str = "olivia") -> str:
    r = await api.client.post("/api/v1/webhooks/secret", headers=api.auth(user))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    secret = str(r.json()["secret"])
    assert secret.startswith("whsec_")
    return secret


async def snapshot_with_callback(api: Api, url: str, text: str = "hello") -> dict[str, Any]:
    room = await api.room()
    await api.post_messages(room, [text])
    r = await api.snapshot(room, body={"callback_url": url})
    assert r.status_code == 202, r.text
    return dict(r.json())


async def fail(channel: AbstractChannel, api: Api, accepted: dict[str, Any]) -> None:
    error = EventError(code="render_timeout", message="The render took too long")
    await publish(
        channel, api.settings.topology.status_queue, status_event(accepted, "failed", error=error)
    )


async def deliveries(api: Api, user: str = "olivia", **params: Any) -> dict[str, Any]:
    r = await api.client.get("/api/v1/webhooks/deliveries", headers=api.auth(user), params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def delivery_of(api: Api, accepted: dict[str, Any], status: str) -> dict[str, Any]:
    """The snapshot's delivery once it has ``status``."""

    async def probe() -> dict[str, Any] | None:
        items = (await deliveries(api, snapshot_id=accepted["snapshot_id"]))["items"]
        return items[0] if items and items[0]["status"] == status else None

    return await until(probe, timeout=30, what=f"a {status} delivery")


async def test_completion_and_failure_are_delivered_signed_and_listed(
    api: Api, channel: AbstractChannel, receiver: Receiver
) -> None:
    secret = await new_secret(api)
    done = await snapshot_with_callback(api, receiver.url + "?room=1")
    broken = await snapshot_with_callback(api, receiver.url)
    artifact = await complete_on(channel, api, done)
    await fail(channel, api, broken)

    delivered = await delivery_of(api, done, "delivered")
    (got,) = receiver.of(delivered["id"])
    assert got.path == "/hooks/snapshots?room=1"
    assert got.headers["content-type"] == "application/json"
    event = got.verify(secret)  # raises unless the signature verifies
    assert event["type"] == "snapshot.completed" == delivered["type"]
    assert event["data"] == {
        "task_id": done["task_id"],
        "snapshot_id": done["snapshot_id"],
        "room_id": event["data"]["room_id"],
        "status": "completed",
        "content_hash": done["content_hash"],
        "download_url": f"/api/v1/snapshots/{done['snapshot_id']}/download",
        "pdf_sha256": artifact.pdf_sha256,
        "bytes": artifact.bytes,
        "pages": artifact.pages,
        "error": None,
    }
    assert event["timestamp"].endswith("Z")
    assert delivered["attempts"] == 1 and delivered["last_status_code"] == 204
    assert [h["status_code"] for h in delivered["history"]] == [204]
    with pytest.raises(WebhookVerificationError):
        got.verify("whsec_" + "A" * 44)  # another secret does not verify it

    failed = await delivery_of(api, broken, "delivered")
    (got,) = receiver.of(failed["id"])
    event = got.verify(secret)
    assert event["type"] == "snapshot.failed"
    assert event["data"]["status"] == "failed" and event["data"]["download_url"] is None
    assert event["data"]["error"] == {
        "code": "render_timeout",
        "message": "The render took too long",
    }

    # Listed newest first, paginated, and only to their owner.
    first = await deliveries(api, limit=1)
    second = await deliveries(api, limit=1, cursor=first["next_cursor"])
    assert {first["items"][0]["id"], second["items"][0]["id"]} == {delivered["id"], failed["id"]}
    assert (await deliveries(api, limit=2))["next_cursor"] is None
    assert (await deliveries(api, "mallory"))["items"] == []


async def test_a_duplicate_status_event_sends_nothing_twice(
    api: Api, channel: AbstractChannel, receiver: Receiver
) -> None:
    await new_secret(api)
    accepted = await snapshot_with_callback(api, receiver.url)
    await complete_on(channel, api, accepted)
    delivered = await delivery_of(api, accepted, "delivered")
    await complete_on(channel, api, accepted)  # a redelivered completed event
    await fail(channel, api, accepted)  # a stale failure
    other = await snapshot_with_callback(api, receiver.url)  # sent after the two above
    await complete_on(channel, api, other)
    await delivery_of(api, other, "delivered")
    assert len(receiver.of(delivered["id"])) == 1
    listed = (await deliveries(api, snapshot_id=accepted["snapshot_id"]))["items"]
    assert len(listed) == 1


async def test_500s_are_retried_with_the_same_webhook_id_until_delivered(
    api: Api, channel: AbstractChannel, receiver: Receiver
) -> None:
    secret = await new_secret(api)
    accepted = await snapshot_with_callback(api, receiver.url)
    receiver.plan.extend([500, 503])
    await complete_on(channel, api, accepted)
    delivered = await delivery_of(api, accepted, "delivered")
    got = receiver.of(delivered["id"])
    assert [r.answered for r in got] == [500, 503, 204]
    for r in got:
        assert r.verify(secret)["type"] == "snapshot.completed"
    assert got[0].body == got[1].body == got[2].body  # the same event, re-signed per attempt
    assert delivered["attempts"] == 3
    assert [(h["attempt"], h["status_code"]) for h in delivered["history"]] == [
        (1, 500),
        (2, 503),
        (3, 204),
    ]
    assert all(h["finished_at"] for h in delivered["history"])


async def test_a_receiver_that_always_fails_is_given_up_after_max_attempts(
    api: Api, channel: AbstractChannel, receiver: Receiver
) -> None:
    await new_secret(api)
    accepted = await snapshot_with_callback(api, receiver.url)
    receiver.plan.extend([500] * MAX_ATTEMPTS)
    await complete_on(channel, api, accepted)
    failed = await delivery_of(api, accepted, "failed")
    assert failed["attempts"] == MAX_ATTEMPTS and failed["last_error"] == "HTTP 500"
    assert failed["next_attempt_at"] is None
    assert len(receiver.of(failed["id"])) == MAX_ATTEMPTS


async def test_a_receiver_outage_is_retried_until_it_is_back(
    api: Api, channel: AbstractChannel, receiver: Receiver
) -> None:
    secret = await new_secret(api)
    accepted = await snapshot_with_callback(api, receiver.url)
    receiver.stop()
    try:
        await complete_on(channel, api, accepted)

        async def refused_twice() -> bool:
            items = (await deliveries(api, snapshot_id=accepted["snapshot_id"]))["items"]
            return bool(items) and len([h for h in items[0]["history"] if h["error"]]) >= 2

        await until(refused_twice, what="two refused attempts")
    finally:
        receiver.start()  # the same port
    delivered = await delivery_of(api, accepted, "delivered")
    (got,) = receiver.of(delivered["id"])
    assert got.verify(secret)["data"]["task_id"] == accepted["task_id"]
    errors = [h["error"] for h in delivered["history"][:-1]]
    assert all(e and "Connect" in e for e in errors), errors
    assert delivered["history"][-1]["status_code"] == 204


async def test_a_rotated_secret_signs_later_deliveries(
    api: Api, channel: AbstractChannel, receiver: Receiver
) -> None:
    old = await new_secret(api)
    first = await snapshot_with_callback(api, receiver.url)
    await complete_on(channel, api, first)
    (got,) = receiver.of((await delivery_of(api, first, "delivered"))["id"])
    assert got.verify(old)

    new = await new_secret(api)
    assert new != old
    second = await snapshot_with_callback(api, receiver.url)
    await complete_on(channel, api, second)
    (got,) = receiver.of((await delivery_of(api, second, "delivered"))["id"])
    assert got.verify(new)["data"]["task_id"] == second["task_id"]
    with pytest.raises(WebhookVerificationError):
        got.verify(old)


async def test_bad_callback_urls_and_a_missing_secret_are_refused_and_change_nothing(
    api: Api, db: asyncpg.Connection
) -> None:
    room = await api.room(owner="nora")
    await api.post_messages(room, ["hello"], user="nora")
    before = await db.fetchval("SELECT count(*) FROM snapshots")
    r = await api.snapshot(room, "nora", body={"callback_url": "https://hooks.example.com/x"})
    assert r.status_code == 422 and r.json()["code"] == "webhook_secret_missing", r.text
    assert "POST /api/v1/webhooks/secret" in r.json()["detail"]

    await new_secret(api, "nora")
    for url in (
        "ftp://hooks.example.com/x",
        "javascript:alert(1)",
        "https://user:pw@hooks.example.com/x",
        "http://10.0.0.8/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:10.0.0.1]/",
        "http://2130706433/",
        "https://hooks.example.com/x#frag",
        "https://hooks.example.com/" + "a" * 2100,
    ):
        r = await api.snapshot(room, "nora", body={"callback_url": url})
        assert r.status_code == 422, (url, r.text)
        assert r.json()["code"] in ("callback_url_refused", "validation_error"), (url, r.text)
    assert await db.fetchval("SELECT count(*) FROM snapshots") == before

    # The callback URL is part of the request an Idempotency-Key is bound to.
    key = {"Idempotency-Key": "hook-1"}
    body = {"callback_url": "https://hooks.example.com/a"}
    assert (await api.snapshot(room, "nora", body=body, headers=key)).status_code == 202
    again = await api.snapshot(room, "nora", body=body, headers=key)
    assert again.status_code == 202
    other = {"callback_url": "https://hooks.example.com/b"}
    r = await api.snapshot(room, "nora", body=other, headers=key)
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"
    # An explicit null callback_url is the same request as none.
    plain = {"Idempotency-Key": "plain-1"}
    assert (await api.snapshot(room, "nora", headers=plain)).status_code == 202
    r = await api.snapshot(room, "nora", body={"callback_url": None}, headers=plain)
    assert r.status_code == 202 and r.json()["snapshot_id"]


async def test_a_host_name_connects_to_the_address_checked_once_keeping_its_host_header(
    api: Api, channel: AbstractChannel, receiver: Receiver
) -> None:
    """``hooks.example`` does not exist in DNS: the delivery arrives only because the sender
    connects to the address its own resolver checked, and says ``Host: hooks.example``."""
    calls: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    api.app.state.webhook_sender.resolver = resolver
    secret = await new_secret(api)
    accepted = await snapshot_with_callback(api, f"http://Hooks.Example.:{receiver.port}/in")
    await complete_on(channel, api, accepted)
    delivered = await delivery_of(api, accepted, "delivered")
    (got,) = receiver.of(delivered["id"])
    assert got.headers["host"] == f"hooks.example:{receiver.port}"
    assert got.verify(secret)["type"] == "snapshot.completed"
    assert calls == ["hooks.example"]


async def test_a_redirect_is_not_followed(
    api: Api, channel: AbstractChannel, receiver: Receiver
) -> None:
    await new_secret(api)
    accepted = await snapshot_with_callback(api, receiver.url)
    receiver.plan.extend([302] * MAX_ATTEMPTS)
    await complete_on(channel, api, accepted)
    failed = await delivery_of(api, accepted, "failed")
    assert failed["last_status_code"] == 302
    assert "redirects are not followed" in failed["last_error"]
    assert [r.path for r in receiver.of(failed["id"])] == ["/hooks/snapshots"] * MAX_ATTEMPTS
    assert not [r for r in receiver.received if r.path == "/redirected"]
