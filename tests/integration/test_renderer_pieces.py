"""Big rooms render in pieces through the job path (issue 11): fanned out on render.pieces,
cached per piece, assembled. Real RabbitMQ, real WeasyPrint, PDFs read back."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel, AbstractExchange
from prometheus_client import REGISTRY
from renderer_fixtures import (
    EventCollector,
    declared_channel,
    make_job,
    make_payload,
    publish_job,
)
from snapshot_renderer.documents import PiecedDocuments
from snapshot_renderer.pieces.plan import split
from snapshot_renderer.service import RendererService
from snapshot_renderer.settings import Settings
from snapshot_shared import chunking
from snapshot_shared.limits import message_weight
from snapshot_shared.messages import RenderOptions, SnapshotPayload, StatusEvent
from snapshot_shared.pdf_identity import read_content_hash
from snapshot_shared.store import pdf_path
from snapshot_shared.topology import Topology
from support.holds import MARKER, Holds, hold_settings, passing
from support.hostile import ConnectionCounter, hostile_bodies, probe
from support.outages import queue_depth
from support.pdf import pdf_text
from support.services import AMQP_URL
from support.waiting import until

MESSAGE = re.compile(r"Message number (\d+) of room")


@pytest.fixture
async def channel(topology: Topology) -> AsyncIterator[AbstractChannel]:
    async with declared_channel(topology) as chan:
        yield chan


def settings(topology: Topology, store: Path, name: str = "pieces", **extra: object) -> Settings:
    values: dict[str, object] = {
        "amqp_url": AMQP_URL,
        "queue_prefix": topology.prefix,
        "store_dir": store,
        "concurrency": 2,
        "metrics_port": 0,
        "renderer_id": name,
        "pieces_min_messages": 100,
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


def pieces(cache: str) -> float:
    return REGISTRY.get_sample_value("snapshot_renderer_pieces_total", {"cache": cache}) or 0.0


def whole_renders() -> float:
    return REGISTRY.get_sample_value("snapshot_renderer_render_duration_seconds_count") or 0.0


def stored_text(store: Path, event: StatusEvent) -> str:
    """The text of the PDF a completed event names, read back from the store."""
    assert event.artifact is not None
    return pdf_text(pdf_path(store, event.artifact.key).read_bytes())[0]


def numbers(text: str) -> list[int]:
    return [int(n) for n in MESSAGE.findall(text)]


async def test_a_big_room_renders_in_pieces_and_reads_like_one_document(
    tmp_path: Path,
    channel: AbstractChannel,
    exchange: AbstractExchange,
    events: EventCollector,
    topology: Topology,
) -> None:
    """600 messages across a month's end: the cover and two sections, fanned out and
    assembled; every message once and in order, continuous page numbers, the content hash as
    the PDF's identifier, pieces done / total in the progress events."""
    store = tmp_path / "store"
    payload = make_payload(n_messages=600, seed=41)
    job = make_job(payload)
    async with RendererService(settings(topology, store)):
        misses, whole = pieces("miss"), whole_renders()
        await publish_job(exchange, job, topology.status_queue)
        received = await events.until_terminal(job.task_id)
    done = received[-1].event
    assert done.event == "completed" and done.cache == "miss", done
    assert whole_renders() == whole  # not rendered whole
    rendered = pieces("miss") - misses
    assert rendered >= 3  # the cover and at least two chunk pieces
    progress = [r.event for r in received if r.event.pieces_total is not None]
    assert progress and {e.pieces_total for e in progress} == {rendered}
    assert [e.pieces_done for e in progress] == sorted(e.pieces_done or 0 for e in progress)
    assert progress[-1].phase == "assembling" and progress[-1].pieces_done == rendered
    assert done.artifact is not None
    path = pdf_path(store, done.artifact.key)
    with path.open("rb") as f:
        assert read_content_hash(f.fileno(), path.stat().st_size) == job.content_hash
    data = path.read_bytes()
    text, pages = pdf_text(data)
    assert numbers(text) == list(range(600))
    assert done.artifact.pages == pages
    assert f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text
    assert "Design review" in text and "Person 2" in text  # the cover: room, members


async def test_appending_ten_messages_renders_one_piece_and_the_cover(
    tmp_path: Path,
    channel: AbstractChannel,
    exchange: AbstractExchange,
    events: EventCollector,
    topology: Topology,
) -> None:
    """A 1,000-message room, then the same room with 10 more messages: the second snapshot
    renders the new tail chunk and the cover, and takes every other piece from the caches."""
    store = tmp_path / "store"
    first = make_job(make_payload(n_messages=1000, seed=42))
    second = make_job(make_payload(n_messages=1010, seed=42))
    async with RendererService(settings(topology, store)):
        await publish_job(exchange, first, topology.status_queue)
        assert (await events.until_terminal(first.task_id, 300))[-1].event.event == "completed"
        misses, hits = pieces("miss"), pieces("memory")
        await publish_job(exchange, second, topology.status_queue)
        received = await events.until_terminal(second.task_id, 300)
    done = received[-1].event
    assert done.event == "completed" and done.cache == "miss", done
    assert pieces("miss") - misses == 2
    assert pieces("memory") - hits >= 20
    text = stored_text(store, done)
    assert numbers(text) == list(range(1010))


async def test_a_re_snapshot_sends_only_its_missing_pieces_chained_onto_the_cached_ones(
    tmp_path: Path,
    channel: AbstractChannel,
    exchange: AbstractExchange,
    events: EventCollector,
    topology: Topology,
) -> None:
    """260 messages, then 270: the grown tail chunk continues a section whose other pieces are
    cached, and its first ten messages are a step of their own, cached too. The document job
    finds those itself, renders the cover, and sends only the new step, chained onto where the
    cached piece before it ends; it renders the stamp meanwhile for the page count of the
    room's last document: the PDF is byte-identical to the one a renderer with an empty store
    makes of the same room."""
    grown = make_payload(n_messages=270, seed=47)
    plan = split(SnapshotPayload.model_validate(grown), RenderOptions())
    assert not plan.sections[-1][-1].opens_section  # the tail chains onto a cached piece
    first, second = make_job(make_payload(n_messages=260, seed=47)), make_job(grown)
    async with RendererService(settings(topology, tmp_path / "store")) as service:
        await publish_job(exchange, first, topology.status_queue)
        assert (await events.until_terminal(first.task_id, 300))[-1].event.event == "completed"
        assert service.sections is not None
        taken, misses = service.sections.taken, pieces("miss")
        await publish_job(exchange, second, topology.status_queue)
        again = (await events.until_terminal(second.task_id, 300))[-1].event
        taken = service.sections.taken - taken
        documents = service.coordinator.documents if service.coordinator else None
        assert isinstance(documents, PiecedDocuments)
        stamps_ahead = documents.stamps_ahead
    assert again.event == "completed", again
    # the new step goes out as the only section job; the document job renders the cover
    assert taken == 1 and pieces("miss") - misses == 2  # nothing else is rendered
    assert stamps_ahead == 1  # its stamp rendered beside them (the room's page count known)
    fresh_store = tmp_path / "fresh"
    async with RendererService(settings(topology, fresh_store, "fresh")):
        fresh = make_job(grown)
        await publish_job(exchange, fresh, topology.status_queue)
        whole = (await events.until_terminal(fresh.task_id, 300))[-1].event
    assert whole.event == "completed" and whole.artifact and again.artifact, whole
    ours = pdf_path(tmp_path / "store", again.artifact.key).read_bytes()
    assert ours == pdf_path(fresh_store, whole.artifact.key).read_bytes()
    assert numbers(pdf_text(ours)[0]) == list(range(270))
    # The open chunk (250-269) is cut in steps of ten: the re-snapshot rendered the ten new
    # messages chained onto the step the first snapshot stored, not the chunk again.
    tail = [p for p in stored_pieces(tmp_path / "store") if p and p[0] >= 250]
    assert sorted(tail) == [list(range(250, 260)), list(range(260, 270))]


def stored_pieces(store: Path) -> list[list[int]]:
    """The message numbers in each piece the store holds (entries with piece facts)."""
    found = []
    for meta in store.rglob("*.json"):
        if "piece" in json.loads(meta.read_bytes()):
            found.append(numbers(pdf_text(meta.with_suffix(".pdf").read_bytes())[0]))
    return found


# Issue 11's size, 10,000 messages, takes ~3 minutes here (201 s at load 4-7): too much of
# the CI budget on a slow day, so `make test` runs 1,600 (2 sections and more) and
# `make test-big-rooms` runs 10,000 (SNAPSHOT_TEST_REPLICA_ROOM).
REPLICA_ROOM = int(os.environ.get("SNAPSHOT_TEST_REPLICA_ROOM", "1600"))


@pytest.mark.timeout(600)  # 201 s in one run on the 2-core VM at load 4-7; the default is 300
async def test_two_replicas_share_the_pieces_of_one_room(
    tmp_path: Path,
    channel: AbstractChannel,
    exchange: AbstractExchange,
    events: EventCollector,
    topology: Topology,
) -> None:
    """Two replicas with one worker each on one store: the sections of a big room (10,000
    messages with `make test-big-rooms`: 200 chunks in 14 sections) go to both, and no piece is
    rendered twice."""
    store = tmp_path / "store"
    job = make_job(make_payload(n_messages=REPLICA_ROOM, seed=43))
    a = settings(topology, store, "replica-a", concurrency=1)
    b = settings(topology, store, "replica-b", concurrency=1)
    async with RendererService(a) as one, RendererService(b) as two:
        misses = pieces("miss")
        await publish_job(exchange, job, topology.status_queue)
        received = await events.until_terminal(job.task_id, 540)
        assert one.sections is not None and two.sections is not None
        by_replica = (one.sections.rendered, two.sections.rendered)
    done = received[-1].event
    assert done.event == "completed", done
    totals = {r.event.pieces_total for r in received if r.event.pieces_total is not None}
    rendered = pieces("miss") - misses
    assert min(by_replica) >= 1, by_replica  # both replicas rendered pieces
    # every piece, each once: the chunks by both replicas' section jobs, the cover by the
    # replica that holds the document job
    assert sum(by_replica) + 1 == rendered == totals.pop()
    text = stored_text(store, done)
    assert numbers(text) == list(range(REPLICA_ROOM))


async def test_a_section_whose_reply_channel_is_closed_waits_for_it_and_is_settled(
    tmp_path: Path,
    channel: AbstractChannel,
    exchange: AbstractExchange,
    events: EventCollector,
    topology: Topology,
) -> None:
    """After a broker restart the robust connection reopens its channels one by one, in no set
    order: a section can be delivered on its reopened channel while the reply (publish)
    channel is still closed. Its reply must wait for that channel, and the delivery be settled;
    before commit 6689b1d the reply raised, the 'failed' reply raised again and the delivery
    stayed unacked, holding the replica's only prefetch, and the document waited for replies
    that never came. Here the section is delivered while the document job's cover holds the
    one worker, the publish channel is closed, and it is reopened once the section's first
    reply is due."""
    store = tmp_path / "store"
    job = make_job(make_payload(n_messages=300, seed=48, name=f"Reply channel {MARKER}"))

    async def section_delivered() -> bool:  # taken by the section consumer, not yet settled
        return await asyncio.to_thread(queue_depth, topology.pieces_queue) == (0, 1)

    async def sections_drained() -> bool:
        return await asyncio.to_thread(queue_depth, topology.pieces_queue) == (0, 0)

    holds = Holds()
    try:
        one_worker = settings(topology, store, concurrency=1, **hold_settings(holds))
        async with RendererService(one_worker) as service:
            sections = service.sections
            assert sections is not None
            replies = sections._publisher._channel
            await publish_job(exchange, job, topology.status_queue)
            held = await holds.next()  # the cover, in the one worker
            await until(section_delivered, what="the room's section to be delivered")
            await replies.close()
            async with passing(holds):
                held.release()
                # the first chunk is rendered and counted right before its reply is sent
                await until(lambda: _true(sections.rendered == 1), what="the first reply")
                await replies.reopen()  # type: ignore[attr-defined]
                received = await events.until_terminal(job.task_id, 120)
            # nothing of render.pieces left behind, ready or delivered and never settled
            await until(sections_drained, what="render.pieces to drain")
            assert sections.active == 0
    finally:
        holds.close()
    done = received[-1].event
    assert done.event == "completed" and done.cache == "miss", done
    assert holds.count == 7  # the cover and 6 chunks, each rendered once
    assert numbers(stored_text(store, done)) == list(range(300))


async def _true(value: bool) -> bool:
    return value


async def test_hostile_and_heavy_content_renders_as_bounded_pieces_without_fetches(
    tmp_path: Path,
    channel: AbstractChannel,
    exchange: AbstractExchange,
    events: EventCollector,
    topology: Topology,
) -> None:
    """Markup, URLs and awkward Unicode fetch nothing in pieces either; 20 messages of 500
    line breaks (the most a body may hold) are a chunk each, a few pages apiece."""
    store = tmp_path / "store"
    with ConnectionCounter() as listener:
        probe(listener.port)  # the counter counts: the one connection we expect
        hostile = list(hostile_bodies(listener.port).values())
        payload = make_payload(n_messages=20 + len(hostile), seed=44)
        bodies = ["x" + "\n" * 499 + f"heavy {i:02d}" for i in range(20)] + hostile
        for message, body in zip(payload["messages"], bodies, strict=True):
            message["body"] = body
        job = make_job(payload)
        async with RendererService(settings(topology, store, pieces_min_messages=10)):
            misses = pieces("miss")
            await publish_job(exchange, job, topology.status_queue)
            received = await events.until_terminal(job.task_id, 300)
    assert listener.connections == 1, listener.peers
    done = received[-1].event
    assert done.event == "completed", done
    assert pieces("miss") - misses >= 21  # the cover and a chunk per heavy message at least
    for meta in store.glob("??/??/*.json"):
        facts = json.loads(meta.read_text())
        if "piece" in facts:
            assert facts["pages"] <= 12, facts  # bounded by the chunk's weight budget
    text = stored_text(store, done)
    assert all(f"heavy {i:02d}" in text for i in range(20))


async def test_the_page_limit_refuses_before_layout_or_stops_at_the_crossing_piece(
    tmp_path: Path,
    channel: AbstractChannel,
    exchange: AbstractExchange,
    events: EventCollector,
    topology: Topology,
) -> None:
    """A room whose weight predicts more pages than the limit renders nothing; one that only
    turns out longer fails at the piece that crosses the limit."""
    store = tmp_path / "store"
    predicted = make_job(make_payload(n_messages=1000, seed=45))
    crossing = make_job(make_payload(n_messages=200, seed=46))
    async with RendererService(settings(topology, store, max_pages=10)):
        misses = pieces("miss")
        await publish_job(exchange, predicted, topology.status_queue)
        refused = (await events.until_terminal(predicted.task_id))[-1].event
        assert pieces("miss") == misses  # refused before any layout
        await publish_job(exchange, crossing, topology.status_queue)
        received = await events.until_terminal(crossing.task_id, 300)
    stopped = received[-1].event
    for event in (refused, stopped):
        assert event.event == "failed" and event.error is not None, event
        assert event.error.code == "too_many_pages" and "limit is 10" in event.error.message
    progress = [r.event for r in received if r.event.pieces_total]
    assert progress and progress[0].pieces_total == 5  # 200 messages: 4 chunks and the cover
    assert max(e.pieces_done or 0 for e in progress) < 5  # stopped before the last piece
    assert all(  # no document was stored, only pieces
        "piece" in json.loads(p.with_suffix(".json").read_text()) for p in store.glob("??/??/*.pdf")
    )


def with_chunks(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with the room-level ordinal and chunk the API stores on each message."""
    messages = payload["messages"]
    chunks = chunking.cut(message_weight(m["body"]) for m in messages)
    for ordinal, (message, chunk) in enumerate(zip(messages, chunks, strict=True)):
        message.update(ordinal=ordinal, chunk=chunk)
    return payload


async def test_a_scoped_snapshot_shares_the_sections_after_its_first_edge(
    tmp_path: Path,
    channel: AbstractChannel,
    exchange: AbstractExchange,
    events: EventCollector,
    topology: Topology,
) -> None:
    """1,400 messages in 28 chunks and three sections (chunks 0-11, a new month 12-19, 20-27).
    A snapshot from message 120 to 1,379 renders its cover, its first section (whose first
    chunk the scope cuts, so every seam after it differs) and the cut last chunk (30 of its
    messages: a snapshot's last chunk not yet full goes in steps of ten, 3 pieces; 14 in all),
    and takes the 15 chunks of the sections between from the unscoped snapshot."""
    store = tmp_path / "store"
    room = with_chunks(make_payload(n_messages=1400, seed=47))
    scoped = {**room, "messages": room["messages"][120:1380]}
    first, second = make_job(room), make_job(scoped)
    async with RendererService(settings(topology, store)):
        await publish_job(exchange, first, topology.status_queue)
        assert (await events.until_terminal(first.task_id, 300))[-1].event.event == "completed"
        misses, hits = pieces("miss"), pieces("memory")
        await publish_job(exchange, second, topology.status_queue)
        done = (await events.until_terminal(second.task_id, 300))[-1].event
    assert done.event == "completed" and done.artifact is not None, done
    assert (pieces("miss") - misses, pieces("memory") - hits) == (14, 15)
    text = stored_text(store, done)
    assert numbers(text) == list(range(120, 1380))
