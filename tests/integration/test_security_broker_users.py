"""Least privilege on the broker (issue 13): the API and the renderers connect as their own
RabbitMQ users (deploy/rabbitmq/definitions.json), each allowed what it declares, publishes and
consumes, and refused the other's queues; neither is an administrator.

Real RabbitMQ, the users created by scripts/rabbitmq_users.py (the ``broker_users`` fixture),
a queue prefix of the tests' form per module. The whole pipeline with one user per service is
in tests/e2e/test_broker_users_live.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aiormq.exceptions import ChannelAccessRefused
from snapshot_shared.topology import (
    JOBS_ROUTING_KEY,
    Topology,
    declare_api_side,
    declare_renderer_side,
    require,
)
from support.api import running_api, settings_for
from support.broker_users import (
    API_USER,
    DEFINITIONS,
    RENDERER_USER,
    broker_user_tags,
    ensure_broker_users,
    rabbitmqctl,
)
from support.services import AMQP_URL, remove_topology, unique
from support.waiting import until

pytestmark = pytest.mark.asyncio(loop_scope="module")

Action = Callable[[AbstractChannel], Awaitable[Any]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def topology() -> AsyncIterator[Topology]:
    topo = Topology(prefix=unique("bu") + ".")
    try:
        yield topo
    finally:
        await remove_topology(topo)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api_conn(broker_users, topology) -> AsyncIterator[AbstractRobustConnection]:
    conn = await aio_pika.connect_robust(broker_users[API_USER])
    try:
        await declare_api_side(await conn.channel(), topology)
        yield conn
    finally:
        await conn.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def renderer_conn(
    broker_users, topology, api_conn
) -> AsyncIterator[AbstractRobustConnection]:
    conn = await aio_pika.connect_robust(broker_users[RENDERER_USER])
    try:
        await declare_renderer_side(await conn.channel(), topology)
        await require(await conn.channel(), (topology.status_queue,), "the API")
        yield conn
    finally:
        await conn.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def guest() -> AsyncIterator[AbstractChannel]:
    """The suite's all-powerful user, to look at what the refused attempts left behind."""
    conn = await aio_pika.connect(AMQP_URL)
    try:
        yield await conn.channel()
    finally:
        await conn.close()


async def refused(conn: AbstractRobustConnection, action: Action) -> str:
    """Run ``action`` on a fresh channel; it must fail with ACCESS_REFUSED (which closes it)."""
    channel = await conn.channel()
    with pytest.raises(ChannelAccessRefused) as info:
        await action(channel)
    return str(info.value)


async def depth(guest: AbstractChannel, queue: str) -> int:
    result = (await guest.declare_queue(queue, passive=True)).declaration_result
    return result.message_count or 0


async def publish_job(conn: AbstractRobustConnection, topology: Topology, body: bytes) -> None:
    """Publish like the outbox relay: persistent, mandatory, confirmed, to the jobs exchange."""
    channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
    exchange = await channel.get_exchange(topology.exchange, ensure=False)
    message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
    await exchange.publish(message, routing_key=JOBS_ROUTING_KEY, mandatory=True)
    await channel.close()


async def take_one(conn: AbstractRobustConnection, queue: str) -> bytes:
    channel = await conn.channel()
    q = await channel.get_queue(queue, ensure=False)
    message = await until(lambda: q.get(fail=False), what=f"a message in {queue}")
    await message.ack()
    await channel.close()
    return message.body


async def test_neither_service_user_is_an_administrator(broker_users):
    tags = broker_user_tags()
    assert "administrator" not in tags[API_USER] and "administrator" not in tags[RENDERER_USER]
    assert tags[API_USER] == tags[RENDERER_USER] == []  # nor management, nor monitoring
    for user in json.loads(DEFINITIONS.read_text())["users"]:
        assert user["tags"] == [], user["name"]


def permissions_of(user: str) -> dict[str, tuple[str, str, str]]:
    rows = json.loads(rabbitmqctl("list_user_permissions", user, "--formatter", "json"))
    return {r["vhost"]: (r["configure"], r["write"], r["read"]) for r in rows}


async def test_the_script_repairs_drift_from_the_definitions_and_leaves_other_users_alone(
    broker_users,
):
    """scripts/rabbitmq_users.py applies the one definitions file: run again, it puts back
    what someone widened, and it changes no other user."""
    before = broker_user_tags()
    guest = permissions_of("guest")
    try:
        rabbitmqctl("set_permissions", "-p", "/", API_USER, ".*", ".*", ".*")
        rabbitmqctl("set_user_tags", API_USER, "administrator")
    finally:
        assert ensure_broker_users() == broker_users  # a second run (the fixture ran it first)
    expected = {
        g["vhost"]: (g["configure"], g["write"], g["read"])
        for g in json.loads(DEFINITIONS.read_text())["permissions"]
        if g["user"] == API_USER
    }
    assert permissions_of(API_USER) == expected
    after = broker_user_tags()
    assert after[API_USER] == []
    assert {u: t for u, t in after.items() if u not in (API_USER, RENDERER_USER)} == {
        u: t for u, t in before.items() if u not in (API_USER, RENDERER_USER)
    }
    assert permissions_of("guest") == guest


async def test_the_api_user_publishes_jobs_the_renderer_user_consumes(
    topology, api_conn, renderer_conn
):
    await publish_job(api_conn, topology, b'{"job": 1}')
    assert await take_one(renderer_conn, topology.jobs_queue) == b'{"job": 1}'


async def test_the_renderer_user_reports_status_the_api_user_consumes(
    topology, api_conn, renderer_conn
):
    channel = await renderer_conn.channel(publisher_confirms=True, on_return_raises=True)
    await channel.default_exchange.publish(  # as StatusPublisher does, to the job's reply_to
        aio_pika.Message(b'{"event": "completed"}'),
        routing_key=topology.status_queue,
        mandatory=True,
    )
    await channel.close()
    assert await take_one(api_conn, topology.status_queue) == b'{"event": "completed"}'


async def test_the_api_user_cannot_take_or_touch_the_renderers_queues(
    topology, api_conn, renderer_conn, guest
):
    await publish_job(api_conn, topology, b'{"job": "waiting"}')
    jobs, retry = topology.jobs_queue, topology.retry_queues[0]
    attempts: dict[str, Action] = {
        "consume render.jobs": lambda ch: _consume(ch, jobs),
        "get from render.jobs": lambda ch: _get(ch, jobs),
        "declare render.jobs": lambda ch: declare_renderer_side(ch, topology),
        "delete render.jobs": lambda ch: ch.queue_delete(jobs),
        "purge render.jobs": lambda ch: _purge(ch, jobs),
        "delete a retry queue": lambda ch: ch.queue_delete(retry),
        "consume a retry queue": lambda ch: _consume(ch, retry),
        "publish on the default exchange": lambda ch: ch.default_exchange.publish(
            aio_pika.Message(b"forged"), routing_key=topology.status_queue
        ),
    }
    for what, action in attempts.items():
        error = await refused(api_conn, action)
        assert "ACCESS_REFUSED" in error, what
    # Nothing changed: the job still waits for a renderer, the renderer's queues are all there.
    assert await depth(guest, jobs) == 1
    for name in topology.retry_queues:
        await guest.declare_queue(name, passive=True)
    assert await take_one(renderer_conn, jobs) == b'{"job": "waiting"}'


async def test_the_renderer_user_cannot_read_status_or_dead_letters_nor_touch_the_apis_queues(
    topology, api_conn, renderer_conn, guest
):
    channel = await renderer_conn.channel(publisher_confirms=True)
    await channel.default_exchange.publish(
        aio_pika.Message(b'{"event": "progress"}'), routing_key=topology.status_queue
    )
    await channel.close()
    status, dead, status_dead = (
        topology.status_queue,
        topology.dead_queue,
        topology.status_dead_queue,
    )
    attempts: dict[str, Action] = {
        "consume render.status": lambda ch: _consume(ch, status),
        "get from render.status": lambda ch: _get(ch, status),
        "consume render.jobs.dead": lambda ch: _consume(ch, dead),
        "consume render.status.dead": lambda ch: _consume(ch, status_dead),
        "declare render.status": lambda ch: declare_api_side(ch, topology),
        "delete render.status": lambda ch: ch.queue_delete(status),
        "delete render.jobs.dead": lambda ch: ch.queue_delete(dead),
        # Binding its own queue to the dead-letter exchange would divert poison events to it.
        "bind render.jobs to the DLX": lambda ch: _bind(ch, topology.jobs_queue, topology),
    }
    for what, action in attempts.items():
        error = await refused(renderer_conn, action)
        assert "ACCESS_REFUSED" in error, what
    assert await depth(guest, status) == 1
    assert await take_one(api_conn, status) == b'{"event": "progress"}'


async def test_the_api_holds_jobs_in_its_outbox_until_a_renderer_declared_its_queue(
    broker_users, database_url, tmp_path
):
    """The API's user may not declare ``render.jobs`` (that needs read on it): a job accepted
    before any renderer ran stays in the outbox, counts no failed attempt, and is published
    once a renderer declared the queue."""
    topology = Topology(prefix=unique("bu") + ".")
    settings = settings_for(
        database_url,
        topology.prefix,
        tmp_path,
        amqp_url=broker_users[API_USER],
        outbox_max_attempts=2,
    )
    try:
        async with running_api(settings, renderer_queues=False) as api:
            room = await api.room()
            await api.post_messages(room, ["before any renderer"])
            accepted = await api.snapshot(room)
            assert accepted.status_code == 202, accepted.text
            task_id = accepted.json()["task_id"]
            for _ in range(3):  # more rounds than max attempts: nothing is counted or parked
                assert await api.app.state.relay.publish_batch() == 0
            async with api.app.state.pool.acquire() as db:
                row = await db.fetchrow(
                    "SELECT attempts, parked_at FROM outbox WHERE task_id = $1", task_id
                )
                task = await db.fetchval("SELECT status FROM tasks WHERE id = $1", task_id)
            assert (row["attempts"], row["parked_at"], task) == (0, None, "queued")
            summary = await api.client.get(
                "/api/v1/snapshots/metrics/summary", headers=api.auth("root", admin=True)
            )
            assert summary.status_code == 200, summary.text
            assert summary.json()["broker"] == "up"  # no renderer yet: nothing consumes jobs
            assert summary.json()["render_jobs"] == {
                "name": topology.jobs_queue,
                "messages": 0,
                "consumers": 0,
            }

            renderer = await aio_pika.connect(broker_users[RENDERER_USER])
            try:
                await declare_renderer_side(await renderer.channel(), topology)
                channel = await renderer.channel()
                jobs = await channel.get_queue(topology.jobs_queue, ensure=False)
                message = await until(
                    lambda: jobs.get(fail=False), timeout=30, what="the job published"
                )
                assert message.correlation_id == task_id
                await message.ack()
            finally:
                await renderer.close()
    finally:
        await remove_topology(topology)


async def _consume(channel: AbstractChannel, queue: str) -> None:
    q = await channel.get_queue(queue, ensure=False)

    async def take(message: AbstractIncomingMessage) -> None:
        await message.ack()

    await q.consume(take)


async def _get(channel: AbstractChannel, queue: str) -> None:
    q = await channel.get_queue(queue, ensure=False)
    await q.get(fail=False)


async def _purge(channel: AbstractChannel, queue: str) -> None:
    q = await channel.get_queue(queue, ensure=False)
    await q.purge()


async def _bind(channel: AbstractChannel, queue: str, topology: Topology) -> None:
    q = await channel.get_queue(queue, ensure=False)
    await q.bind(topology.dead_letter_exchange, "render.status")
