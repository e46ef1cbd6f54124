"""The outbox relay's fair share against the real PostgreSQL and RabbitMQ (no renderer: the
test plays it, reading render.jobs and answering on render.status): a user has at most
``render_jobs_per_user`` jobs published and unfinished; the next one waits in the outbox,
counting no attempt, and goes out as soon as one of the user's tasks finishes. Another user's
job, and a job whose content was rendered before (a likely cache hit), go out at once."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractChannel, AbstractQueue
from snapshot_shared.messages import RenderJob, StatusEvent, decode_job, encode
from support.api import Api, running_api, settings_for
from support.pdf import stored_fake_pdf
from support.services import own_prefix, unique
from support.waiting import next_message, until

PER_USER = 2


@pytest.fixture
def prefix() -> Iterator[str]:
    with own_prefix("fairbox") as name:
        yield name


async def request(api: Api, user: str, text: str) -> str:
    """A snapshot of a new room of ``user``'s holding ``text``; returns its task id."""
    room = await api.room(owner=user)
    await api.post_messages(room, [text], user=user)
    r = await api.snapshot(room, user=user)
    assert r.status_code == 202, r.text
    return str(r.json()["task_id"])


async def again(api: Api, user: str, room: str) -> str:
    r = await api.snapshot(room, user=user)
    assert r.status_code == 202, r.text
    return str(r.json()["task_id"])


async def published(jobs: AbstractQueue, n: int) -> list[RenderJob]:
    """The next ``n`` jobs in render.jobs, in queue order (taken off the queue)."""
    out = []
    for _ in range(n):
        message = await next_message(jobs, timeout=30)
        await message.ack()
        out.append(decode_job(message.body, message.content_encoding))
    return out


async def finish(channel: AbstractChannel, api: Api, job: RenderJob) -> None:
    """Play the renderer: report ``job`` completed (with an artifact) on render.status."""
    event = StatusEvent(
        task_id=job.task_id,
        snapshot_id=job.snapshot_id,
        event="completed",
        progress=100,
        cache="miss",
        # the API completes a task only with a PDF of its content
        artifact=stored_fake_pdf(api.settings.store_dir, job.content_hash)[0],
        at=dt.datetime.now(dt.UTC),
    )
    body, _ = encode(event)
    await channel.default_exchange.publish(
        aio_pika.Message(body, content_type="application/json"),
        routing_key=api.settings.topology.status_queue,
    )


async def held(db: asyncpg.Connection, task_id: str) -> asyncpg.Record | None:
    return await db.fetchrow(
        "SELECT attempts, parked_at, requested_by FROM outbox WHERE task_id = $1",
        uuid.UUID(task_id),
    )


async def gauges(api: Api) -> dict[str, float]:
    """The outbox gauges of ``/metrics``: publishable backlog, rows waiting for a turn."""
    found = {}
    for line in (await api.client.get("/metrics")).text.splitlines():
        for name in ("backlog", "waiting_for_turn"):
            if line.startswith(f"snapshot_api_outbox_{name} "):
                found[name] = float(line.split()[1])
    return found


async def test_a_users_jobs_past_its_share_wait_in_the_outbox_others_go_at_once(
    database_url: str, prefix: str, tmp_path: Any, db: asyncpg.Connection, channel: AbstractChannel
) -> None:
    settings = settings_for(database_url, prefix, tmp_path, render_jobs_per_user=PER_USER)
    a, b = unique("alice"), unique("bob")  # the database is shared by the module
    async with running_api(settings) as api:
        jobs = await channel.get_queue(settings.topology.jobs_queue)
        alice = [await request(api, a, f"alice's room {n}") for n in range(PER_USER + 2)]
        bob = await request(api, b, "bob's room")

        # Queue order: alice's share, then bob's at once (although created after all of hers).
        first = await published(jobs, PER_USER + 1)
        assert [str(j.task_id) for j in first] == alice[:PER_USER] + [bob]
        assert [j.requested_by for j in first] == [a] * PER_USER + [b]
        # Alice's third and fourth wait: rounds went by (bob's went out), no attempt counted.
        for task_id in alice[PER_USER:]:
            row = await held(db, task_id)
            assert row is not None and row["attempts"] == 0 and row["parked_at"] is None
            assert row["requested_by"] == a
        assert await jobs.get(no_ack=False, fail=False) is None

        async def settled() -> bool:  # the relay deletes bob's row after the broker's confirm
            return await gauges(api) == {"backlog": 0.0, "waiting_for_turn": 2.0}  # not stuck

        await until(settled, 30, "the outbox gauges: nothing publishable, two rows waiting")

        await finish(channel, api, first[0])  # one of alice's finishes: her third goes out
        (third,) = await published(jobs, 1)
        assert str(third.task_id) == alice[PER_USER]

        async def gone() -> bool:  # the relay commits after the broker's confirm
            return await held(db, alice[PER_USER]) is None

        await until(gone, 30, "the published row to leave the outbox")
        assert await held(db, alice[PER_USER + 1]) is not None  # still at her share
        status = await api.client.get(f"/api/v1/tasks/{alice[-1]}", headers=api.auth(a))
        assert status.json()["status"] == "queued"


async def test_a_likely_cache_hit_is_not_held_behind_the_users_misses(
    database_url: str, prefix: str, tmp_path: Any, db: asyncpg.Connection, channel: AbstractChannel
) -> None:
    settings = settings_for(database_url, prefix, tmp_path, render_jobs_per_user=1)
    alice = unique("alice")
    async with running_api(settings) as api:
        jobs = await channel.get_queue(settings.topology.jobs_queue)
        room = await api.room(owner=alice)
        await api.post_messages(room, ["rendered once already"], user=alice)
        rendered = await again(api, alice, room)
        (job,) = await published(jobs, 1)
        assert str(job.task_id) == rendered
        await finish(channel, api, job)

        async def done() -> bool:
            r = await api.client.get(f"/api/v1/tasks/{rendered}", headers=api.auth(alice))
            return bool(r.json()["status"] == "completed")

        await until(done, 30, "the first render to complete")
        busy = await request(api, alice, "a miss that keeps her share busy")
        waiting = await request(api, alice, "a miss that waits")
        hit = await again(api, alice, room)  # the same content as the completed one
        out = await published(jobs, 2)
        assert [str(j.task_id) for j in out] == [busy, hit]
        assert (await held(db, waiting)) is not None
