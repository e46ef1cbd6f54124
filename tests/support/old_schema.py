"""A database as an earlier release left it: migrations up to a version, and rows written the way
that release's API wrote them, for tests that then migrate to the head and look again."""

from __future__ import annotations

import gzip
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from snapshot_api.db.migrate import discover, migrate, migrations_dir
from snapshot_shared.hashing import canonical_json, content_hash_canonical, iso_utc


async def migrate_until(dsn: str, last: int) -> list[str]:
    """Create the database and apply the migrations numbered up to ``last`` only."""
    folder = Path(tempfile.mkdtemp(prefix="migrations-"))
    try:
        for version, _name, path in discover(migrations_dir()):
            if version <= last:
                shutil.copy(path, folder / path.name)
        return await migrate(dsn, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def insert_room(conn: asyncpg.Connection, name: str, owner: str = "olivia") -> uuid.UUID:
    room = uuid.uuid4()
    await conn.execute(
        "INSERT INTO rooms (id, name, created_by) VALUES ($1, $2, $3)", room, name, owner
    )
    await conn.execute(
        "INSERT INTO members (room_id, user_id, display_name, role) VALUES ($1, $2, $3, 'owner')",
        room,
        owner,
        owner.title(),
    )
    return room


async def insert_messages(
    conn: asyncpg.Connection, room: uuid.UUID, bodies: list[str], author: str = "olivia"
) -> None:
    """Messages as the release before ordinals stored them: in ``bodies`` order (``seq``)."""
    await conn.execute(
        "INSERT INTO messages (id, room_id, author_id, author_name, body)"
        " SELECT gen_random_uuid(), $1, $2, $3, m.body"
        " FROM unnest($4::text[]) WITH ORDINALITY AS m(body, ord) ORDER BY m.ord",
        room,
        author,
        author.title(),
        bodies,
    )


async def frozen_payload(conn: asyncpg.Connection, room: uuid.UUID) -> dict[str, Any]:
    """The whole room as that release's snapshot payload: members, messages in ``seq`` order,
    no ordinals or chunks, canonical timestamps."""
    r = await conn.fetchrow("SELECT id, name, created_at FROM rooms WHERE id = $1", room)
    members = await conn.fetch(
        "SELECT user_id, display_name, role, joined_at FROM members WHERE room_id = $1"
        " ORDER BY joined_at, user_id",
        room,
    )
    messages = await conn.fetch(
        "SELECT id, author_id, author_name, created_at, body, kind FROM messages"
        " WHERE room_id = $1 ORDER BY seq",
        room,
    )
    out = [
        {**dict(m), "id": str(m["id"]), "created_at": iso_utc(m["created_at"])} for m in messages
    ]
    return {
        "room": {"id": str(r["id"]), "name": r["name"], "created_at": iso_utc(r["created_at"])},
        "sections": ["members", "messages"],
        "members": [{**dict(m), "joined_at": iso_utc(m["joined_at"])} for m in members],
        "messages": out,
        "as_of": out[-1]["created_at"] if out else None,
    }


async def insert_snapshot(
    conn: asyncpg.Connection,
    room: uuid.UUID,
    payload: dict[str, Any],
    options: dict[str, Any],
    requested_by: str = "olivia",
) -> dict[str, Any]:
    """A queued snapshot of ``payload`` with its stored payload and task, as that release
    wrote them; returns the 202 body's fields (``snapshot_id``, ``task_id``,
    ``content_hash``)."""
    canonical = canonical_json(payload)
    digest = content_hash_canonical(canonical, options, "snapshot")
    snapshot_id, task_id = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        "INSERT INTO payloads (content_hash, body_gzip, bytes) VALUES ($1, $2, $3)"
        " ON CONFLICT (content_hash) DO NOTHING",
        digest,
        gzip.compress(canonical, 1, mtime=0),
        len(canonical),
    )
    scope = {"from": None, "to": None, "sections": payload["sections"]}
    await conn.execute(
        "INSERT INTO snapshots (id, room_id, requested_by, scope, options, template,"
        " content_hash, message_count) VALUES ($1, $2, $3, $4, $5, 'snapshot', $6, $7)",
        snapshot_id,
        room,
        requested_by,
        canonical_json(scope).decode(),
        canonical_json(options).decode(),
        digest,
        len(payload["messages"]),
    )
    await conn.execute(
        "INSERT INTO tasks (id, snapshot_id, deadline) VALUES ($1, $2, now() + interval '1 hour')",
        task_id,
        snapshot_id,
    )
    return {"snapshot_id": str(snapshot_id), "task_id": str(task_id), "content_hash": digest}


async def complete_snapshot(
    conn: asyncpg.Connection, accepted: dict[str, Any], artifact: Any
) -> None:
    """What applying that release's ``completed`` event wrote (``artifact``: the event's)."""
    await conn.execute(
        "UPDATE tasks SET status = 'completed', progress = 100, phase = 'completed',"
        " cache = 'miss', started_at = now(), completed_at = now() WHERE id = $1",
        uuid.UUID(accepted["task_id"]),
    )
    await conn.execute(
        "UPDATE snapshots SET status = 'completed', artifact_key = $2, artifact_bytes = $3,"
        " artifact_pages = $4, pdf_sha256 = $5 WHERE id = $1",
        uuid.UUID(accepted["snapshot_id"]),
        artifact.key,
        artifact.bytes,
        artifact.pages,
        artifact.pdf_sha256,
    )
