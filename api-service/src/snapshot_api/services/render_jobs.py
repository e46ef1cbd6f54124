"""Enqueueing a render: a new task and its job in the outbox, inside the caller's transaction."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import replace
from typing import Any, Literal
from uuid import UUID

import asyncpg
from snapshot_shared.messages import RenderJob, encode_job
from snapshot_shared.topology import JOBS_ROUTING_KEY

from snapshot_api.db import manifests, outbox, payloads, tasks
from snapshot_api.db.outbox import NewJob
from snapshot_api.settings import Settings


def build(
    settings: Settings,
    snapshot_id: UUID,
    content_hash: str,
    options: dict[str, Any],
    template: str,
    canonical_payload: bytes,
    request_id: str | None,
    verify_store: bool = False,
    payload_gzip: bytes | None = None,
    requested_by: str | None = None,
    hash_version: Literal[1, 2] = 1,
) -> NewJob:
    """A new task's id, times and encoded render job: the values of its ``tasks`` and
    ``outbox`` rows. The payload goes in as canonical JSON bytes (``payload_gzip``: their
    gzip, when the caller has it) and is neither parsed nor serialized again. ``requested_by``
    (the snapshot's) lets renderers and the outbox relay share the work fairly among users."""
    task_id = uuid.uuid4()
    created_at = dt.datetime.now(dt.UTC)
    deadline = created_at + dt.timedelta(seconds=settings.task_deadline_seconds)
    job = RenderJob(
        task_id=task_id,
        snapshot_id=snapshot_id,
        content_hash=content_hash,
        template=template,
        options=options,
        payload={},
        requested_at=created_at,
        request_id=request_id,
        deadline=deadline,
        verify_store=verify_store,
        requested_by=requested_by,
        hash_version=hash_version,
    )
    threshold = settings.gzip_threshold_bytes if hash_version == 1 else None
    body, encoding = encode_job(job, canonical_payload, threshold, payload_gzip)
    return NewJob(
        task_id=task_id,
        snapshot_id=snapshot_id,
        created_at=created_at,
        deadline=deadline,
        routing_key=JOBS_ROUTING_KEY,
        body=body,
        content_encoding=encoding,
        request_id=request_id,
        requested_by=requested_by,
    )


def build_envelope(
    settings: Settings,
    snapshot_id: UUID,
    content_hash: str,
    options: dict[str, Any],
    template: str,
    request_id: str | None,
    verify_store: bool = False,
    requested_by: str | None = None,
) -> NewJob:
    """``build`` for a snapshot with a manifest (hash version 2): the outbox row holds the
    job with an empty payload and names the manifest; the outbox relay splices the stored
    payload in when it publishes (``messaging/job_bodies.py``), off the request path."""
    job = build(
        settings,
        snapshot_id,
        content_hash,
        options,
        template,
        b"{}",
        request_id,
        verify_store=verify_store,
        requested_by=requested_by,
        hash_version=2,  # snapshot_shared.hashing.CHUNKED_HASH_VERSION
    )
    return replace(job, manifest=content_hash)


async def enqueue(conn: asyncpg.Connection, job: NewJob) -> UUID:
    """Insert the task and outbox row of a ``build`` job, in the caller's transaction (the
    outbox relay publishes it after the commit). A re-render is a miss: it counts against its
    user's share (``requested_by``)."""
    await tasks.insert(conn, job.task_id, job.snapshot_id, job.created_at, job.deadline)
    await outbox.insert(conn, job)
    return job.task_id


async def rerender(
    pool: asyncpg.Pool, settings: Settings, snapshot: asyncpg.Record, request_id: str | None
) -> UUID | None:
    """Render a completed snapshot again from its stored payload (its PDF left the store or
    was damaged: the renderer is asked to verify and rewrite the stored copy).

    Nothing is enqueued while a task of the snapshot is still open; returns the new task id.
    Concurrent calls for one snapshot take turns on a transaction-scoped lock, so the second
    sees the first one's task and enqueues nothing.
    """
    async with pool.acquire() as conn, conn.transaction():
        await tasks.lock_rerender(conn, snapshot["id"])
        if await tasks.open_for_snapshot(conn, snapshot["id"]):
            return None
        options = snapshot["options"]
        options = options if isinstance(options, dict) else json.loads(options)
        if await manifests.exists(conn, snapshot["content_hash"]):
            job = build_envelope(
                settings,
                snapshot["id"],
                snapshot["content_hash"],
                options,
                snapshot["template"],
                request_id,
                verify_store=True,
                requested_by=snapshot["requested_by"],
            )
            return await enqueue(conn, job)
        raw = await payloads.load(conn, snapshot["content_hash"])  # created before manifests
        if raw is None:
            return None
        job = build(
            settings,
            snapshot["id"],
            snapshot["content_hash"],
            options,
            snapshot["template"],
            raw,
            request_id,
            verify_store=True,
            requested_by=snapshot["requested_by"],
        )
        return await enqueue(conn, job)
