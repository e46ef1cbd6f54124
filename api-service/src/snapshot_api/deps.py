"""FastAPI dependencies as ``Annotated`` aliases, so route signatures stay short."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import asyncpg
from fastapi import Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from snapshot_api.auth import User, decode_token
from snapshot_api.db.audit import AuditContext
from snapshot_api.errors import Unauthorized
from snapshot_api.messaging.outbox_relay import OutboxRelay
from snapshot_api.services.access import REQUEST_AUDIT, Actor
from snapshot_api.services.rate_limits import Limiter, Quota
from snapshot_api.services.task_streams import StreamHub
from snapshot_api.settings import Settings

_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="JWT signed with the configured algorithm (HS256 by default, or RS256):"
    " `sub` and `exp` required; `name`, `roles` (`admin`) optional; `iss`/`aud` when configured",
)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


async def get_relay(request: Request) -> OutboxRelay:
    relay: OutboxRelay = request.app.state.relay
    return relay


async def get_stream_hub(request: Request) -> StreamHub:
    hub: StreamHub = request.app.state.stream_hub
    return hub


SettingsDep = Annotated[Settings, Depends(get_settings)]
StreamHubDep = Annotated[StreamHub, Depends(get_stream_hub)]
PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
RelayDep = Annotated[OutboxRelay, Depends(get_relay)]


async def current_user(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None:
        raise Unauthorized("Send 'Authorization: Bearer <token>'")
    user = decode_token(credentials.credentials, settings)
    request.state.user = user  # for the audit entry of a denied attempt (denials.py)
    client = request.client.host if request.client else None
    REQUEST_AUDIT.set(AuditContext(user.id, getattr(request.state, "request_id", None), client))
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def current_actor(request: Request, user: CurrentUser) -> Actor:
    client = request.client.host if request.client else None
    return Actor(
        user=user, request_id=getattr(request.state, "request_id", None), client_addr=client
    )


ActorDep = Annotated[Actor, Depends(current_actor)]


def _quota(action: str) -> Callable[[Request, Response, User], Awaitable[Quota]]:
    async def quota(request: Request, response: Response, user: CurrentUser) -> Quota:
        limiter: Limiter = request.app.state.rate_limiter
        return Quota(limiter, user.id, action, response.headers.update)

    return quota


# The caller's rate limit for one action; the use case spends it (services/rate_limits.py).
RoomsQuota = Annotated[Quota, Depends(_quota("rooms"))]
MessagesQuota = Annotated[Quota, Depends(_quota("messages"))]
MembersQuota = Annotated[Quota, Depends(_quota("members"))]
SnapshotsQuota = Annotated[Quota, Depends(_quota("snapshots"))]


# Keyset pagination parameters shared by every list endpoint.
Cursor = Annotated[
    str | None, Query(max_length=512, description="next_cursor of the previous page")
]
Limit = Annotated[int, Query(ge=1, le=200)]


# Kept on the route itself (routes are unhashable; an id() could be a dead route's: tests run
# many apps).
_QUERY_NAMES = "_snapshot_query_names"


def _declared_query(route: object) -> frozenset[str]:
    """The query parameter names ``route`` declares (its dependencies' included)."""
    if route is None:
        return frozenset()
    names: frozenset[str] | None = getattr(route, _QUERY_NAMES, None)
    if names is None:
        found: set[str] = set()
        pending = [getattr(route, "dependant", None)]
        while pending:
            dependant = pending.pop()
            if dependant is not None:
                found.update(param.alias for param in dependant.query_params)
                pending.extend(dependant.dependencies)
        names = frozenset(found)
        setattr(route, _QUERY_NAMES, names)
    return names


async def reject_unknown_query(request: Request) -> None:
    """An operation that takes query parameters answers one it does not know with the 422 of
    any invalid parameter: a misspelt filter (``?snapshotid=``) must not silently list
    everything. (Operations without query parameters ignore a query, as before.)"""
    if not request.query_params:
        return
    declared = _declared_query(request.scope.get("route"))
    if not declared:
        return
    unknown = [name for name in request.query_params if name not in declared]
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", unknown[0]),
                    "msg": "unknown query parameter",
                    "type": "extra_forbidden",
                }
            ]
        )
