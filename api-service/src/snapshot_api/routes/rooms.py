"""Rooms, members and messages."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Path, Response

from snapshot_api.deps import (
    ActorDep,
    CurrentUser,
    Cursor,
    Limit,
    MembersQuota,
    MessagesQuota,
    PoolDep,
    RoomsQuota,
)
from snapshot_api.openapi import problem_responses, rate_limited
from snapshot_api.schemas import (
    Member,
    MemberPut,
    Message,
    MessageList,
    MessagePost,
    Room,
    RoomCreate,
)
from snapshot_api.services import messages, rooms

router = APIRouter(prefix="/api/v1/rooms", tags=["rooms"])
UserId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\s/\x00-\x1f\x7f-\x9f]+$")]
READ = problem_responses(401, 404, 422, 503)
WRITE = problem_responses(400, 401, 403, 404, 413, 422, 429, 503)


@router.post(
    "",
    status_code=201,
    response_model=Room,
    responses={
        **rate_limited(201, "Room created; you are its owner"),
        **problem_responses(400, 401, 413, 422, 429, 503),
    },
)
async def create_room(
    body: RoomCreate, user: CurrentUser, pool: PoolDep, quota: RoomsQuota
) -> dict[str, Any]:
    return await rooms.create_room(pool, user, body.name, quota)


@router.get("/{room_id}", response_model=Room, responses=READ)
async def get_room(room_id: UUID, user: CurrentUser, pool: PoolDep) -> dict[str, Any]:
    return await rooms.get_room(pool, user, room_id)


@router.put(
    "/{room_id}/members/{user_id}",
    response_model=Member,
    responses={
        200: rate_limited(200, "Member changed")[200],
        201: {"model": Member, **rate_limited(201, "Member added")[201]},
        **WRITE,
        **problem_responses(409),
    },
)
async def put_member(
    room_id: UUID,
    user_id: UserId,
    body: MemberPut,
    actor: ActorDep,
    pool: PoolDep,
    quota: MembersQuota,
    response: Response,
) -> dict[str, Any]:
    member, created = await rooms.put_member(
        pool, actor, room_id, user_id, body.role, body.display_name, quota
    )
    response.status_code = 201 if created else 200
    return member


@router.delete(
    "/{room_id}/members/{user_id}",
    status_code=204,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def remove_member(room_id: UUID, user_id: UserId, actor: ActorDep, pool: PoolDep) -> Response:
    """An owner removes a member; a member removes themself (leaves). The last owner stays."""
    await rooms.remove_member(pool, actor, room_id, user_id)
    return Response(status_code=204)


@router.delete("/{room_id}", status_code=204, responses=problem_responses(401, 403, 404, 422, 503))
async def delete_room(room_id: UUID, actor: ActorDep, pool: PoolDep) -> Response:
    """Delete the room and everything in it (owner)."""
    await rooms.delete_room(pool, actor, room_id)
    return Response(status_code=204)


@router.post(
    "/{room_id}/messages",
    status_code=201,
    response_model=Message | list[Message],
    responses={**rate_limited(201, "The message, or the batch's messages"), **WRITE},
)
async def post_messages(
    room_id: UUID,
    body: Annotated[MessagePost, Body()],
    user: CurrentUser,
    pool: PoolDep,
    quota: MessagesQuota,
) -> dict[str, Any] | list[dict[str, Any]]:
    """One message, or a batch; each message counts against the `messages` rate limit."""
    created = await messages.post(pool, user, room_id, body, quota)
    return created if hasattr(body, "messages") else created[0]


@router.get("/{room_id}/messages", response_model=MessageList, responses=READ)
async def list_messages(
    room_id: UUID,
    user: CurrentUser,
    pool: PoolDep,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    return await messages.page(pool, user, room_id, cursor, limit)
