"""Snapshots made before message ordinals (issue 11, "Compatibility") and before sealed chunks
(issue 12): a database filled by the release of migration 0008, its snapshots rendered by a
real renderer, then migrated to the head. The migration seals the room's closed chunks. Old
snapshots stay listed and downloadable with the same bytes and ETag; one whose PDF left the
store is rendered again from its stored payload (which has no ordinals; hash version 1) to the
same bytes; a new snapshot of the same room (hash version 2, from the sealed chunks) carries
the room's ordinals and chunks and renders to the same text and pages as the old one."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from renderer_fixtures import EventCollector, QueueReader, declared_channel, publish_job
from snapshot_api.db import manifests
from snapshot_api.db.migrate import migrate
from snapshot_api.schemas import SnapshotOptions
from snapshot_renderer.service import RendererService
from snapshot_renderer.settings import Settings as RendererSettings
from snapshot_shared import store
from snapshot_shared.messages import RenderJob
from snapshot_shared.topology import Topology
from support.api import Api, running_api, settings_for
from support.old_schema import (
    complete_snapshot,
    frozen_payload,
    insert_messages,
    insert_room,
    insert_snapshot,
    migrate_until,
)
from support.pdf import pdf_text
from support.sealed import assert_sealed
from support.services import AMQP_URL, PG_BASE, drop_database, unique
from support.waiting import until

# 120 messages: the migrations cut them into chunks 0 and 1 (sealed by 0011) and 2 (open).
BODIES = ["Kick-off at nine", "Budget approved", "Ship it on Friday", "Retro next week"] + [
    f'Note {i}: <b>not bold</b> "quoted" \\ tab\there é 中文 😀' for i in range(116)
]


@pytest.fixture
def old_database():
    dsn = f"{PG_BASE}/{unique('test_mig_')}"
    try:
        yield dsn
    finally:
        drop_database(dsn)


def renderer_settings(prefix: str, store_dir: Path) -> RendererSettings:
    return RendererSettings(
        amqp_url=AMQP_URL,
        queue_prefix=prefix,
        store_dir=store_dir,
        concurrency=1,
        metrics_port=0,
        renderer_id="compat-renderer",
    )


async def render_old(
    prefix: str, store_dir: Path, olds: list[tuple[dict[str, Any], dict, dict]], conn
) -> None:
    """Render each old snapshot as that release did: its job on the queue, a real renderer,
    the completed event's artifact written to its rows."""
    topology = Topology(prefix=prefix)
    async with declared_channel(topology) as channel:
        exchange = await channel.get_exchange(topology.exchange)
        status = await channel.get_queue(topology.status_queue)
        events = EventCollector(await QueueReader(status).start())
        async with RendererService(renderer_settings(prefix, store_dir)):
            for accepted, payload, options in olds:
                job = RenderJob(
                    task_id=uuid.UUID(accepted["task_id"]),
                    snapshot_id=uuid.UUID(accepted["snapshot_id"]),
                    content_hash=accepted["content_hash"],
                    options=options,
                    payload=payload,
                    requested_at=dt.datetime.now(dt.UTC),
                    requested_by="olivia",
                )
                await publish_job(exchange, job, topology.status_queue, gzip=True)
                done = (await events.until_terminal(job.task_id))[-1].event
                assert done.event == "completed", done
                await complete_snapshot(conn, accepted, done.artifact)


async def download(api: Api, snapshot_id: str) -> Any:
    return await api.client.get(
        f"/api/v1/snapshots/{snapshot_id}/download", headers=api.auth("olivia")
    )


async def rendered_again(api: Api, snapshot_id: str, first_task: str) -> dict | None:
    r = await api.client.get(f"/api/v1/snapshots/{snapshot_id}", headers=api.auth("olivia"))
    task = r.json()["task"]
    done = task["task_id"] != first_task and task["status"] == "completed"
    return r.json() if done else None


async def test_old_snapshots_survive_the_migration_and_new_ones_carry_ordinals(
    old_database, queue_prefix, tmp_path
):
    dsn, store_dir = old_database, tmp_path / "store"
    await migrate_until(dsn, 8)
    conn = await asyncpg.connect(dsn)
    try:
        room = await insert_room(conn, "Compat room")
        await insert_messages(conn, room, BODIES)
        payload = await frozen_payload(conn, room)
        options = SnapshotOptions().model_dump(mode="json")
        titled = SnapshotOptions(title="Gone from the store").model_dump(mode="json")
        kept = await insert_snapshot(conn, room, payload, options)
        gone = await insert_snapshot(conn, room, payload, titled)
        await render_old(
            queue_prefix, store_dir, [(kept, payload, options), (gone, payload, titled)], conn
        )
        old = {
            s["snapshot_id"]: await conn.fetchrow(
                "SELECT artifact_key, pdf_sha256 FROM snapshots WHERE id = $1",
                uuid.UUID(s["snapshot_id"]),
            )
            for s in (kept, gone)
        }
        pdfs = {
            sid: store.pdf_path(store_dir, row["artifact_key"]).read_bytes()
            for sid, row in old.items()
        }

        assert await migrate(dsn) == [
            "0009_message_chunks",
            "0010_task_pieces",
            "0011_sealed_chunks",
        ]
        async with (
            running_api(settings_for(dsn, queue_prefix, store_dir)) as api,
            RendererService(renderer_settings(queue_prefix, store_dir)),
        ):
            listed = await api.client.get(
                f"/api/v1/rooms/{room}/snapshots", headers=api.auth("olivia")
            )
            assert {(s["id"], s["status"], s["content_hash"]) for s in listed.json()["items"]} == {
                (kept["snapshot_id"], "completed", kept["content_hash"]),
                (gone["snapshot_id"], "completed", gone["content_hash"]),
            }
            r = await download(api, kept["snapshot_id"])
            assert r.status_code == 200 and r.content == pdfs[kept["snapshot_id"]]
            assert r.headers["etag"] == f'"{old[kept["snapshot_id"]]["pdf_sha256"]}"'

            # The PDF left the store: rendered again from the stored payload, to the same bytes.
            store.pdf_path(store_dir, old[gone["snapshot_id"]]["artifact_key"]).unlink()
            r = await download(api, gone["snapshot_id"])
            assert r.status_code == 503 and r.json()["code"] == "artifact_missing", r.text
            again = await until(
                lambda: rendered_again(api, gone["snapshot_id"], gone["task_id"]),
                120,
                "the old snapshot rendered again",
            )
            assert again["task"]["cache"] == "miss"  # rendered, not found in a cache
            r = await download(api, gone["snapshot_id"])
            assert r.status_code == 200 and r.content == pdfs[gone["snapshot_id"]]
            assert r.headers["etag"] == f'"{old[gone["snapshot_id"]]["pdf_sha256"]}"'

            # A new snapshot of the room: the same payload plus the room's ordinals and chunks.
            new = await api.snapshot(room)
            assert new.status_code == 202, new.text
            assert await assert_sealed(conn, room) == 2  # sealed by the migration
            stored = await manifests.payload_gzip(conn, new.json()["content_hash"])
            frozen = json.loads(gzip.decompress(stored))
            assert [(m["ordinal"], m["chunk"]) for m in frozen["messages"]] == [
                (i, i // 50) for i in range(len(BODIES))
            ]
            for m in frozen["messages"]:
                del m["ordinal"], m["chunk"]
            assert frozen == payload
            await until(
                lambda: rendered_again(api, new.json()["snapshot_id"], ""), 120, "the new snapshot"
            )
            r = await download(api, new.json()["snapshot_id"])
            text, pages = pdf_text(r.content)
            assert (text, pages) == pdf_text(pdfs[kept["snapshot_id"]])  # the same content
            assert all(body in text for body in BODIES[:4])
    finally:
        await conn.close()
