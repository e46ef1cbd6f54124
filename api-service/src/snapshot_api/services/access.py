"""Room access: non-members see nothing (404), members below the role get 403."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from snapshot_api.auth import User
from snapshot_api.db import audit, rooms
from snapshot_api.errors import Forbidden, NotFound

# The role rule's one home: SQL that needs it gets ``roles_at_least(minimum)`` as a parameter.
ROLE_RANK = {"viewer": 1, "editor": 2, "owner": 3}
ADMIN_ACTS_AS = "owner"  # an administrator who is not a member acts as an owner everywhere
# Who is asking in this request (set once the token is verified, deps.current_user), so that
# an administrator's access to a room they are not a member of is audited wherever it happens.
REQUEST_AUDIT: ContextVar[audit.AuditContext | None] = ContextVar("request_audit", default=None)


@dataclass(frozen=True)
class Actor:
    """The authenticated user plus where the request came from (for audit and logs)."""

    user: User
    request_id: str | None
    client_addr: str | None

    @property
    def audit(self) -> audit.AuditContext:
        return audit.AuditContext(self.user.id, self.request_id, self.client_addr)


def roles_at_least(minimum: str) -> list[str]:
    """The roles that rank at or above ``minimum`` (for a ``role = ANY($n::text[])`` test)."""
    return [role for role, rank in ROLE_RANK.items() if rank >= ROLE_RANK[minimum]]


def check_rank(role: str, minimum: str) -> str:
    """Return ``role`` if it ranks at or above ``minimum``, else raise 403."""
    if ROLE_RANK[role] < ROLE_RANK[minimum]:
        raise Forbidden(f"This needs the {minimum} role or higher; you are {role}")
    return role


async def require_role(
    conn: asyncpg.Connection | asyncpg.Pool, room_id: UUID, user: User, minimum: str
) -> str:
    """Return the caller's role in the room, or raise 404/403. An administrator who is not a
    member acts as an owner, and each such access is audited (``admin.room_access``)."""
    role = await rooms.get_role(conn, room_id, user.id)
    if role is None:
        if user.is_admin and await rooms.get_room(conn, room_id) is not None:
            ctx = REQUEST_AUDIT.get()
            if ctx is None or ctx.actor != user.id:
                ctx = audit.AuditContext(user.id, None, None)
            await audit.record(conn, ctx, "admin.room_access", "granted", room_id)
            return ADMIN_ACTS_AS
        raise NotFound("Room not found")
    return check_rank(role, minimum)
