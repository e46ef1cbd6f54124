"""Bearer JWT authentication: pinned algorithm, ``exp`` required, claims → ``User``."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from snapshot_api.errors import Unauthorized
from snapshot_api.settings import Settings

MAX_USER_ID = 128


@dataclass(frozen=True)
class User:
    id: str
    name: str
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def decode_token(token: str, settings: Settings) -> User:
    """Verify ``token`` and return its user; every failure is a 401 ``Unauthorized``."""
    try:
        claims = jwt.decode(
            token,
            settings.secret,
            algorithms=[settings.jwt_algorithm],
            options={"require": ["exp", "sub"]},
            leeway=settings.jwt_leeway_seconds,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The token has expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The token is invalid") from exc
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_USER_ID:
        raise Unauthorized("The token's subject is invalid")
    name = claims.get("name")
    roles = claims.get("roles") or []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized("The token's roles claim must be a list of strings")
    return User(
        id=sub, name=name if isinstance(name, str) and name else sub, roles=frozenset(roles)
    )


def issue_token(
    settings: Settings,
    user_id: str,
    name: str | None = None,
    admin: bool = False,
    ttl_seconds: int = 24 * 3600,
) -> str:
    """A signed token for development (``make token``) and tests."""
    claims = {
        "sub": user_id,
        "name": name or user_id.title(),
        "roles": ["admin"] if admin else [],
        "exp": int(time.time()) + ttl_seconds,
    }
    return jwt.encode(claims, settings.secret, algorithm=settings.jwt_algorithm)
