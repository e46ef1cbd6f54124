"""Room payloads and render jobs for the renderer-only rows (``bench.chunks``), shaped like the
API's frozen payloads: three members, canonical UTC timestamps, one message every 17 minutes
(~85 a day), the bench's bodies (``bench.rooms``) and kinds."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

from snapshot_shared.hashing import content_hash, iso_utc
from snapshot_shared.messages import RenderJob, RenderOptions

from bench.rooms import KINDS, MEMBERS, OWNER, WORDS

_START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
_PEOPLE = ((OWNER, "owner", "Olivia Owner"), *MEMBERS)


def short_bodies(count: int, seed: int = 3) -> list[str]:
    """Short one-line bodies: a number and 2–5 words (~25 bytes)."""
    rng = random.Random(seed)
    return [
        f"#{i} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
        for i in range(count)
    ]


def room_payload(bodies: list[str], name: str, seed: int = 0) -> dict[str, Any]:
    """An unscoped snapshot of a room whose timeline is ``bodies``."""
    stamp = iso_utc(_START)
    members = [
        {"user_id": user, "display_name": display, "role": role, "joined_at": stamp}
        for user, role, display in _PEOPLE
    ]
    messages = [
        {
            "id": str(uuid.UUID(int=(seed << 64) + i + 1)),
            "author_id": _PEOPLE[i % 3][0],
            "author_name": _PEOPLE[i % 3][2],
            "created_at": iso_utc(_START + dt.timedelta(minutes=17 * i)),
            "body": body,
            "kind": KINDS[i % len(KINDS)],
        }
        for i, body in enumerate(bodies)
    ]
    return {
        "room": {"id": str(uuid.UUID(int=seed)), "name": name, "created_at": stamp},
        "sections": ["members", "messages"],
        "members": members,
        "messages": messages,
        "as_of": messages[-1]["created_at"] if messages else None,
    }


def render_job(payload: dict[str, Any], title: str | None = None) -> RenderJob:
    """A job for ``payload`` as the API would publish it (its content hash matches)."""
    options = RenderOptions(title=title).model_dump(mode="json")
    return RenderJob(
        task_id=uuid.uuid4(),
        snapshot_id=uuid.uuid4(),
        content_hash=content_hash(payload, options, "snapshot"),
        template="snapshot",
        options=options,
        payload=payload,
        requested_at=dt.datetime.now(dt.UTC),
        request_id=f"bench-{uuid.uuid4().hex[:8]}",
        requested_by=OWNER,
    )
