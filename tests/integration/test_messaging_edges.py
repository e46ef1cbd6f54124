"""The API's consumers at the edges, against the real PostgreSQL and RabbitMQ: status events
that meet a failing database are retried, not dropped; poison events and rejected jobs end
where an operator can see them, each with a code that says what happened.

Database errors come from PostgreSQL itself: a trigger on ``tasks`` raises the SQLSTATE the
test puts in ``test_fault`` (and counts each attempt in a sequence, which no rollback undoes).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from snapshot_shared.messages import StatusEvent, encode
from snapshot_shared.topology import Topology, TopologyConflict, declare
from support.api import Api, running_api, settings_for
from support.pdf import stored_fake_pdf
from support.services import AMQP_URL, own_prefix
from support.waiting import next_message, until

FAULT_SQL = """
CREATE TABLE IF NOT EXISTS test_fault (sqlstate text NOT NULL);
CREATE SEQUENCE IF NOT EXISTS test_fault_hits;
CREATE OR REPLACE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE code text;
BEGIN
  SELECT sqlstate INTO code FROM test_fault LIMIT 1;
  IF code IS NOT NULL THEN
    PERFORM nextval('test_fault_hits');
    RAISE EXCEPTION 'injected fault %', code USING ERRCODE = code;
  END IF;
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS test_fault ON tasks;
CREATE TRIGGER test_fault BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION test_fault();
"""


class Faults:
    """The test's handle on the trigger: which SQLSTATE to raise, and how often it fired."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def raise_(self, sqlstate: str) -> None:
        await self.conn.execute("DELETE FROM test_fault")
        await self.conn.execute("INSERT INTO test_fault VALUES ($1)", sqlstate)

    async def clear(self) -> None:
        await self.conn.execute("DELETE FROM test_fault")

    async def hits(self) -> int:
        row = await self.conn.fetchrow("SELECT last_value, is_called FROM test_fault_hits")
        return int(row["last_value"]) if row["is_called"] else 0


@pytest.fixture
def prefix() -> Iterator[str]:
    """A queue prefix of this test alone: nothing it leaves in a queue reaches another test."""
    with own_prefix("edge") as name:
        yield name


@pytest.fixture
async def faults(database_url: str) -> AsyncIterator[Faults]:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(FAULT_SQL)
        await conn.execute("DELETE FROM test_fault")
        yield Faults(conn)
    finally:
        await conn.execute("DROP TRIGGER IF EXISTS test_fault ON tasks")
        await conn.close()


@pytest.fixture
async def api(database_url: str, prefix: str, tmp_path: Any) -> AsyncIterator[Api]:
    settings = settings_for(database_url, prefix, tmp_path, delivery_limit=2, db_pool_max=3)
    async with running_api(settings) as api:
        yield api


@pytest.fixture
async def channel() -> AsyncIterator[AbstractChannel]:
    conn = await aio_pika.connect(AMQP_URL)
    try:
        yield await conn.channel(publisher_confirms=True, on_return_raises=True)
    finally:
        await conn.close()


async def new_task(api: Api) -> dict[str, Any]:
    room = await api.room()
    await api.post_messages(room, ["edge case"])
    r = await api.snapshot(room)
    assert r.status_code == 202, r.text
    return dict(r.json())


async def send_status(channel: AbstractChannel, api: Api, body: bytes) -> None:
    await channel.default_exchange.publish(
        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key=api.settings.topology.status_queue,
        mandatory=True,
    )


def completed_event(api: Api, task: dict[str, Any]) -> bytes:
    """The task's ``completed`` event, its artifact (a stand-in PDF of its content) stored."""
    artifact, _ = stored_fake_pdf(api.settings.store_dir, task["content_hash"])
    event = StatusEvent(
        task_id=task["task_id"],
        snapshot_id=task["snapshot_id"],
        event="completed",
        progress=100,
        phase="completed",
        cache="miss",
        render_ms=10.0,
        artifact=artifact,
        at=dt.datetime.now(dt.UTC),
    )
    return encode(event)[0]


async def task_status(api: Api, task: dict[str, Any]) -> dict[str, Any]:
    r = await api.client.get(f"/api/v1/tasks/{task['task_id']}", headers=api.auth("olivia"))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def until_task(api: Api, task: dict[str, Any], status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        found = await task_status(api, task)
        return found if found["status"] == status else None

    return await until(probe, timeout=30, what=f"task {task['task_id']} {status}")


def first_death(message: AbstractIncomingMessage) -> str:
    deaths = (message.headers or {}).get("x-death") or [{}]
    return str(deaths[0].get("reason"))


@pytest.mark.parametrize(
    "sqlstate",
    ["25006", "53300", "57P03"],
    ids=["read_only_failover", "too_many_connections", "cannot_connect_now"],
)
async def test_a_transient_database_error_requeues_the_event_until_it_applies(
    api: Api, channel: AbstractChannel, faults: Faults, sqlstate: str
) -> None:
    task = await new_task(api)
    before = await faults.hits()
    await faults.raise_(sqlstate)
    await send_status(channel, api, completed_event(api, task))

    async def retried() -> int | None:
        hits = await faults.hits() - before
        return hits if hits >= 3 else None

    await until(retried, timeout=30, what="the event to be tried three times")
    assert (await task_status(api, task))["status"] == "queued"
    await faults.clear()
    done = await until_task(api, task, "completed")
    assert done["error"] is None and done["progress"] == 100


async def test_an_undecodable_event_is_dead_lettered_where_an_operator_sees_it(
    api: Api, channel: AbstractChannel
) -> None:
    await send_status(channel, api, b'{"not": "an event"')
    dead = await channel.get_queue(api.settings.topology.status_dead_queue)
    message = await next_message(dead)
    assert message.body == b'{"not": "an event"'
    assert first_death(message) == "rejected"
    await message.ack()


async def test_an_event_the_database_refuses_as_invalid_is_dead_lettered_at_once(
    api: Api, channel: AbstractChannel, faults: Faults
) -> None:
    task = await new_task(api)
    await faults.raise_("22P02")  # invalid_text_representation: no retry can help
    body = completed_event(api, task)
    await send_status(channel, api, body)
    dead = await channel.get_queue(api.settings.topology.status_dead_queue)
    message = await next_message(dead)
    assert message.body == body and first_death(message) == "rejected"
    await message.ack()
    await faults.clear()
    assert (await task_status(api, task))["status"] == "queued"


def consumer_prefetch(queue: str) -> int | None:
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_consumers", "queue_name", "prefetch_count"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[0] == queue:
            return int(parts[1])
    return None


async def test_the_status_prefetch_is_bounded_by_the_database_pool(api: Api) -> None:
    assert api.settings.status_prefetch > api.settings.db_pool_max == 3
    queue = api.settings.topology.status_queue
    prefetch = await asyncio.to_thread(consumer_prefetch, queue)
    assert prefetch == 3


async def take_job(api: Api, channel: AbstractChannel) -> AbstractIncomingMessage:
    jobs = await channel.get_queue(api.settings.topology.jobs_queue)
    return await next_message(jobs)


async def test_a_job_the_renderer_rejected_fails_as_rejected_not_as_redelivered(
    api: Api, channel: AbstractChannel
) -> None:
    task = await new_task(api)
    message = await take_job(api, channel)
    await message.reject(requeue=False)  # what the renderer does with a job it cannot take
    failed = await until_task(api, task, "failed")
    assert failed["error"]["code"] == "job_rejected", failed


async def test_a_retried_job_that_exhausts_its_deliveries_fails_as_delivery_limit(
    api: Api, channel: AbstractChannel
) -> None:
    """A job that went through a delay queue carries ``x-first-death-reason: expired`` for
    good: the reason of its last death is what counts."""
    topology = api.settings.topology
    task = await new_task(api)
    message = await take_job(api, channel)
    copy = aio_pika.Message(
        message.body,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        reply_to=message.reply_to,
    )
    await channel.default_exchange.publish(
        copy, routing_key=topology.retry_queue(1), mandatory=True
    )
    await message.ack()
    for _ in range(topology.delivery_limit + 1):
        again = await take_job(api, channel)
        assert (again.headers or {}).get("x-first-death-reason") == "expired"
        await again.nack(requeue=True)
    failed = await until_task(api, task, "failed")
    assert failed["error"]["code"] == "delivery_limit_exceeded", failed


async def test_a_queue_left_by_an_older_release_fails_with_what_to_do(prefix: str) -> None:
    """render.status as an older release declared it (no delivery limit, no dead-lettering):
    RabbitMQ refuses the new arguments; the error names the queue and the way out."""
    topology = Topology(prefix=prefix)
    conn = await aio_pika.connect(AMQP_URL)
    try:
        old = await conn.channel()
        await old.declare_queue(
            topology.status_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        with pytest.raises(TopologyConflict) as refused:
            await declare(await conn.channel(), topology)
        text = str(refused.value)
        assert f"rabbitmqctl delete_queue {topology.status_queue}" in text, text
        assert "PRECONDITION_FAILED" in text, text
    finally:
        await conn.close()
