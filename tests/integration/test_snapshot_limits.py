"""The default per-snapshot limits (``snapshot_shared.limits``: 100,000 messages, 64 MiB of
weight) against the real PostgreSQL and RabbitMQ: a room at a limit is accepted and its job is
one the renderer's default settings take; one message more is a 413 that writes nothing."""

from __future__ import annotations

import uuid

import pytest
from snapshot_api.db.chunks import seal_closed
from snapshot_api.messaging.job_bodies import body_of
from snapshot_renderer.settings import Settings as RendererSettings
from snapshot_shared import limits
from snapshot_shared.chunking import OpenChunk, append
from snapshot_shared.messages import decode_job
from support.api import running_api, settings_for
from support.security import assert_problem, table_counts

# A room filled behind the API, as 100,000 appends would have left it (ordinals, chunks and
# the room's open chunk): posting them through the API would take minutes.
FILL = """
WITH added AS (
  INSERT INTO messages (id, room_id, author_id, author_name, body, ordinal, chunk)
  SELECT gen_random_uuid(), $1, 'olivia', 'Olivia', m.body, m.ord - 1, m.chunk
  FROM unnest($2::text[], $3::int[]) WITH ORDINALITY AS m(body, chunk, ord)
)
UPDATE rooms SET next_ordinal = cardinality($2::text[]), chunk_index = $4,
                 chunk_messages = $5, chunk_weight = $6
WHERE id = $1
"""


NO_BROKER = "amqp://guest:guest@127.0.0.1:1/"  # jobs stay in the outbox, to be read back


@pytest.fixture
async def api(database_url, queue_prefix, tmp_path):
    settings = settings_for(database_url, queue_prefix, tmp_path, amqp_url=NO_BROKER)
    async with running_api(settings, wait_for_broker=False) as api:
        assert api.settings.snapshot_limits == limits.SnapshotLimits()  # the defaults
        yield api


async def test_a_room_of_100000_messages_is_accepted_and_one_more_is_413(api, db, database_url):
    assert limits.SNAPSHOT_MESSAGES == 100_000
    room = await api.room("olivia", "Big room")
    bodies = [f"message {i}" for i in range(limits.SNAPSHOT_MESSAGES)]
    chunks, end = append(OpenChunk(), [limits.message_weight(b) for b in bodies])
    await db.execute(FILL, uuid.UUID(room), bodies, chunks, end.index, end.messages, end.weight)
    await seal_closed(db, uuid.UUID(room), 0, 0, end.index)  # as the appends would have

    accepted = await api.snapshot(room)
    assert accepted.status_code == 202, accepted.text
    snapshot_id = uuid.UUID(accepted.json()["snapshot_id"])
    assert await db.fetchval("SELECT message_count FROM snapshots WHERE id = $1", snapshot_id) == (
        limits.SNAPSHOT_MESSAGES
    )
    # What the API wrote is a job a renderer with its default settings takes.
    row = await db.fetchrow(
        "SELECT o.* FROM outbox o JOIN tasks t ON t.id = o.task_id WHERE t.snapshot_id = $1",
        snapshot_id,
    )
    body, encoding = await body_of(db, row, api.settings.gzip_threshold_bytes)  # the relay's
    renderer = RendererSettings()
    job = decode_job(body, encoding, renderer.max_job_bytes, renderer.snapshot_limits)
    messages = job.payload["messages"]
    assert [m["ordinal"] for m in messages] == list(range(limits.SNAPSHOT_MESSAGES))
    assert [m["chunk"] for m in messages] == chunks

    await api.post_messages(room, ["one too many"])
    before = await table_counts(database_url)
    problem = assert_problem(await api.snapshot(room), 413, "snapshot_too_large")
    assert problem["limit"] == limits.SNAPSHOT_MESSAGES
    assert "100000 messages" in problem["detail"]
    assert await table_counts(database_url) == before


async def test_a_room_at_the_weight_limit_is_accepted_and_one_message_more_is_413(
    api, database_url
):
    assert limits.SNAPSHOT_WEIGHT == 64 * 2**20
    # The heaviest body there is: 16 KiB of color emoji; 40 of them are within 64 MiB.
    emoji = "😀" * (limits.MESSAGE_BYTES // 4)
    room = await api.room("olivia", "Heavy room")
    await api.post_messages(room, [emoji] * 40)
    assert 40 * limits.message_weight(emoji) <= limits.SNAPSHOT_WEIGHT
    assert (await api.snapshot(room)).status_code == 202

    await api.post_messages(room, [emoji])
    before = await table_counts(database_url)
    problem = assert_problem(await api.snapshot(room), 413, "snapshot_too_large")
    assert problem["limit"] == limits.SNAPSHOT_WEIGHT
    assert problem["weight"] == 41 * limits.message_weight(emoji) > limits.SNAPSHOT_WEIGHT
    assert await table_counts(database_url) == before
