"""A room at the default per-snapshot weight limit renders within the default budgets.

Issue 12 asks that the largest room the API accepts renders. ``python -m bench.max_room`` (from
``tests/``; several minutes, so not part of ``make test``) sends one render job of as many
16 KiB messages as the weight limit holds (``snapshot_shared.limits.SNAPSHOT_WEIGHT``) to an
in-process renderer with default settings but for its queue prefix and store, and prints how
it ended, the pages and the time. The 100,000-message room is bench row 11.3 (``bench.chunks``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from snapshot_renderer.service import RendererService
from snapshot_renderer.settings import Settings
from snapshot_shared.hashing import content_hash, iso_utc
from snapshot_shared.limits import MESSAGE_BYTES, SNAPSHOT_WEIGHT, message_weight
from snapshot_shared.messages import RenderJob, RenderOptions, decode_event, encode
from snapshot_shared.topology import JOBS_ROUTING_KEY, Topology, declare, delete
from support.services import AMQP_URL

WORDS = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
]


def room() -> dict[str, Any]:
    """As many messages of ~16 KiB of words as the weight limit holds."""
    words: list[str] = []
    while len(" ".join([*words, WORDS[len(words) % len(WORDS)]]).encode()) <= MESSAGE_BYTES:
        words.append(WORDS[len(words) % len(WORDS)])
    body = " ".join(words)
    count = SNAPSHOT_WEIGHT // message_weight(body)
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    return {
        "room": {"id": str(uuid.uuid4()), "name": "Max weight room", "created_at": iso_utc(start)},
        "sections": ["members", "messages"],
        "members": [],
        "messages": [
            {
                "id": str(uuid.uuid4()),
                "author_id": "u",
                "author_name": "Writer",
                "created_at": iso_utc(start + dt.timedelta(minutes=i)),
                "body": body,
                "kind": "message",
            }
            for i in range(count)
        ],
        "as_of": iso_utc(start + dt.timedelta(minutes=count)),
    }


async def main() -> None:
    payload = room()
    weight = sum(message_weight(m["body"]) for m in payload["messages"])
    print(f"{len(payload['messages'])} messages, weight {weight:,} of {SNAPSHOT_WEIGHT:,}")
    options = RenderOptions().model_dump(mode="json")
    job = RenderJob(
        task_id=uuid.uuid4(),
        snapshot_id=uuid.uuid4(),
        content_hash=content_hash(payload, options, "snapshot"),
        options=options,
        payload=payload,
        requested_at=dt.datetime.now(dt.UTC),
    )
    topology = Topology(prefix=f"maxroom{uuid.uuid4().hex[:6]}.")
    connection = await aio_pika.connect_robust(AMQP_URL)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    declared = await declare(channel, topology)
    ended: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def on_event(message: AbstractIncomingMessage) -> None:
        await message.ack()
        event = decode_event(message.body, message.content_encoding)
        if event.event in ("completed", "failed") and not ended.done():
            ended.set_result(event)

    await declared.status.consume(on_event)
    store = Path(tempfile.mkdtemp(prefix="maxroom-"))
    settings = Settings(
        amqp_url=AMQP_URL, queue_prefix=topology.prefix, store_dir=store, metrics_port=0
    )
    try:
        async with RendererService(settings):
            body, encoding = encode(job, gzip_threshold=0)
            started = time.perf_counter()
            await declared.exchange.publish(
                aio_pika.Message(body, content_encoding=encoding, reply_to=topology.status_queue),
                routing_key=JOBS_ROUTING_KEY,
            )
            event = await asyncio.wait_for(ended, 3600)
            seconds = time.perf_counter() - started
    finally:
        await delete(channel, topology)
        await connection.close()
    pages = event.artifact.pages if event.artifact else None
    print(f"{event.event} in {seconds:.1f} s, {pages} pages, error {event.error}")


if __name__ == "__main__":
    asyncio.run(main())
