"""No webhook reaches a loopback receiver when SNAPSHOT_API_WEBHOOK_ALLOW_LOOPBACK is false.

The request-time check refuses these URLs with a 422; here each URL is also written straight
into its snapshot (as if it had passed then: a name that resolved elsewhere, a setting changed
since), so the send-time check is proven on its own: resolve, refuse, record, never connect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractChannel
from support.api import Api, running_api, settings_for
from support.security import complete_on
from support.waiting import until
from support.webhook_receiver import Receiver


def ssrf_urls(port: int) -> list[str]:
    """Ways to write "this machine" that PDF services' SSRF fixes have missed."""
    return [
        f"http://127.0.0.1:{port}/",
        f"HTTP://127.0.0.1:{port}/",
        f"hTtP://LOCALHOST:{port}/",
        f"http://localhost.:{port}/",
        f"http://127.0.0.1.:{port}/",
        f"http://127.1:{port}/",
        f"http://2130706433:{port}/",
        f"http://0177.0.0.1:{port}/",
        f"http://0x7f000001:{port}/",
        f"http://0.0.0.0:{port}/",
        f"http://[::1]:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        f"http://[::ffff:7f00:1]:{port}/",
        f"http://[::127.0.0.1]:{port}/",
        f"http://a@127.0.0.1:{port}/",
        f"http://hooks.example.com@127.0.0.1:{port}/",
        f"http://rebind.example:{port}/",  # the test resolver answers 127.0.0.1
        f"http://mixed.example:{port}/",  # a public address and 127.0.0.1
    ]


async def resolver(host: str, port: int) -> list[str]:
    return {
        "rebind.example": ["127.0.0.1"],
        "mixed.example": ["93.184.215.14", "127.0.0.1"],
        "localhost": ["127.0.0.1", "::1"],
    }.get(host, ["127.0.0.1"])


@pytest.fixture
async def api(database_url: str, queue_prefix: str, tmp_path: Any) -> AsyncIterator[Api]:
    settings = settings_for(
        database_url,
        queue_prefix,
        tmp_path,
        webhook_allow_loopback=False,
        webhook_max_attempts=2,  # so that a regression settles (and shows) quickly
        webhook_backoff_seconds=0.1,
        webhook_poll_seconds=0.1,
    )
    async with running_api(settings) as api:
        api.app.state.webhook_sender.resolver = resolver
        yield api


async def test_the_ssrf_list_is_refused_at_request_time(api: Api, receiver: Receiver) -> None:
    await api.client.post("/api/v1/webhooks/secret", headers=api.auth("olivia"))
    room = await api.room()
    for url in ssrf_urls(receiver.port):
        if "example:" in url:
            continue  # names: only their resolved address tells, at send time
        r = await api.snapshot(room, body={"callback_url": url})
        assert r.status_code == 422, (url, r.text)
        assert r.json()["code"] == "callback_url_refused", (url, r.text)


async def test_nothing_reaches_a_loopback_receiver_at_send_time(
    api: Api, channel: AbstractChannel, receiver: Receiver, db: asyncpg.Connection
) -> None:
    await api.client.post("/api/v1/webhooks/secret", headers=api.auth("olivia"))
    room = await api.room()
    await api.post_messages(room, ["hello"])
    urls = ssrf_urls(receiver.port)
    tasks: dict[str, str] = {}
    for url in urls:
        r = await api.snapshot(room, body={"callback_url": "https://hooks.example.com/in"})
        assert r.status_code == 202, r.text
        accepted = r.json()
        await db.execute(
            "UPDATE snapshots SET callback_url = $2 WHERE id = $1",
            accepted["snapshot_id"],
            url,
        )
        tasks[accepted["task_id"]] = url
        await complete_on(channel, api, accepted)

    async def all_settled() -> list[dict[str, Any]] | None:
        r = await api.client.get(
            "/api/v1/webhooks/deliveries", headers=api.auth("olivia"), params={"limit": 100}
        )
        items = [i for i in r.json()["items"] if i["task_id"] in tasks]
        done = len(items) == len(urls) and all(i["status"] != "pending" for i in items)
        return items if done else None

    items = await until(all_settled, what="every SSRF delivery settled")
    reached = [tasks[i["task_id"]] for i in items if i["status"] == "delivered"]
    assert reached == [] and receiver.count() == 0
    for item in items:
        url = tasks[item["task_id"]]
        assert item["status"] == "failed", (url, item)
        assert item["attempts"] == 1, (url, item)  # refused for good, not retried
        assert item["last_error"].startswith("refused:"), (url, item["last_error"])
        assert item["history"][0]["status_code"] is None
