"""Reaper and concurrent Idempotency-Key requests, against the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio

import aio_pika
import asyncpg
import pytest
from snapshot_shared.messages import decode_job
from snapshot_shared.topology import delete as delete_topology
from support.api import running_api, settings_for
from support.services import AMQP_URL, unique
from support.waiting import next_message, until


@pytest.fixture
async def api(database_url, queue_prefix, tmp_path):
    settings = settings_for(
        database_url, queue_prefix, tmp_path, task_deadline_seconds=5, reaper_interval_seconds=0.2
    )
    async with running_api(settings) as api:
        yield api


async def test_reaper_fails_tasks_past_their_deadline(api):
    # No renderer consumes this prefix: without the reaper the task would stay queued forever.
    room = await api.room()
    await api.post_messages(room, ["never rendered"])
    accepted = (await api.snapshot(room)).json()

    async def failed():
        r = await api.client.get(f"/api/v1/tasks/{accepted['task_id']}", headers=api.auth("olivia"))
        return r.json() if r.json()["status"] == "failed" else None

    task = await until(failed, timeout=30, what="the reaper")
    assert task["error"]["code"] == "deadline_exceeded"
    snap = (
        await api.client.get(
            f"/api/v1/snapshots/{accepted['snapshot_id']}", headers=api.auth("olivia")
        )
    ).json()
    assert snap["status"] == "failed" and snap["error"]["code"] == "deadline_exceeded"


async def test_concurrent_requests_with_one_idempotency_key_make_one_snapshot(api):
    room = await api.room()
    await api.post_messages(room, ["once"])
    answers = await asyncio.gather(
        *(api.snapshot(room, headers={"Idempotency-Key": "same-key"}) for _ in range(8))
    )
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["snapshot_id"] for a in answers}) == 1
    assert len({a.json()["task_id"] for a in answers}) == 1
    other_user = await api.snapshot(room, user="olivia", headers={"Idempotency-Key": "k2"})
    assert other_user.json()["snapshot_id"] != answers[0].json()["snapshot_id"]
    conn = await asyncpg.connect(api.settings.database_dsn)
    try:
        count = await conn.fetchval("SELECT count(*) FROM snapshots WHERE room_id = $1::uuid", room)
    finally:
        await conn.close()
    assert count == 2


async def test_idempotency_keys_are_scoped_per_user(api):
    room = await api.room()
    await api.add_member(room, "eddie", "editor")
    await api.post_messages(room, ["scoped"])
    mine = await api.snapshot(room, user="olivia", headers={"Idempotency-Key": "shared"})
    theirs = await api.snapshot(room, user="eddie", headers={"Idempotency-Key": "shared"})
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["snapshot_id"] != theirs.json()["snapshot_id"]


async def test_a_worker_whose_declaration_fails_keeps_retrying_until_it_publishes(
    database_url, tmp_path
):
    """Two API workers declaring the quorum queues at once can get their connection closed by
    RabbitMQ (541 INTERNAL_ERROR, seen under ``make bench``); a worker that gave up there never
    published. A classic queue squatting the status queue's name (the API declares it; the
    jobs queue is the renderer's) fails every declaration the same way until it is removed."""
    prefix = unique("t") + "."  # its own: the module's queues exist already
    settings = settings_for(database_url, prefix, tmp_path)
    broker = await aio_pika.connect(AMQP_URL)
    try:
        channel = await broker.channel()
        await channel.declare_queue(settings.topology.status_queue, durable=True)  # classic
        async with running_api(settings, wait_for_broker=False) as api:
            room = await api.room()
            await api.post_messages(room, ["accepted while the broker is not ready"])
            accepted = await api.snapshot(room)
            assert accepted.status_code == 202, accepted.text

            async def declaration_failed() -> bool:
                return api.app.state.broker.failed_attempts > 0

            await until(declaration_failed, what="a failed declaration")
            assert (await api.client.get("/readyz")).status_code == 503
            await channel.queue_delete(settings.topology.status_queue)

            async def ready() -> bool:
                return (await api.client.get("/readyz")).status_code == 200

            await until(ready, what="the API ready once the declaration succeeds")
            jobs = await channel.get_queue(settings.topology.jobs_queue)
            message = await next_message(jobs)
            while message.correlation_id != accepted.json()["task_id"]:  # earlier tests' rows
                await message.ack()
                message = await next_message(jobs)
            await message.ack()
            job = decode_job(message.body, message.content_encoding)
            assert str(job.task_id) == accepted.json()["task_id"]
    finally:
        await delete_topology(await broker.channel(), settings.topology)
        await broker.close()
