"""Bearer JWT authentication: pinned algorithm, ``exp`` and ``sub`` required, ``iss``/``aud``
checked when configured, small leeway; claims → ``User``. Every failure is a 401."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from snapshot_api.errors import Unauthorized
from snapshot_api.settings import Settings
from snapshot_api.text import text_problem

MAX_USER_ID = 128
MAX_NAME = 100
MAX_TOKEN_CHARS = 8192


@dataclass(frozen=True)
class User:
    id: str
    name: str
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def _verify(token: str, settings: Settings) -> dict[str, Any]:
    required = ["exp", "sub"]
    required += ["iss"] if settings.jwt_issuer else []
    required += ["aud"] if settings.jwt_audience else []
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.verification_key,
            algorithms=[settings.jwt_algorithm],
            options={"require": required},
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway=settings.jwt_leeway_seconds,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The token has expired", invalid_token=True) from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The token is invalid", invalid_token=True) from exc
    return claims


def decode_token(token: str, settings: Settings) -> User:
    """Verify ``token`` and return its user; every failure is a 401 ``Unauthorized``."""
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthorized("The token is invalid", invalid_token=True)
    claims = _verify(token, settings)
    sub = claims.get("sub")
    if (
        not isinstance(sub, str)
        or not sub
        or len(sub) > MAX_USER_ID
        or text_problem(sub, one_line=True)
    ):
        raise Unauthorized("The token's subject is invalid", invalid_token=True)
    roles = claims.get("roles") or []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized("The token's roles claim must be a list of strings", invalid_token=True)
    return User(id=sub, name=_display_name(claims.get("name")) or sub, roles=frozenset(roles))


def _display_name(name: Any) -> str | None:
    """The ``name`` claim when it is usable as a display name (else the caller uses ``sub``)."""
    if not isinstance(name, str) or text_problem(name, one_line=True):
        return None
    return name.strip()[:MAX_NAME] or None


def issue_token(
    settings: Settings,
    user_id: str,
    name: str | None = None,
    admin: bool = False,
    ttl_seconds: int = 24 * 3600,
) -> str:
    """A signed HS* token for development (``make token``) and tests."""
    claims: dict[str, Any] = {
        "sub": user_id,
        "name": name or user_id.title(),
        "roles": ["admin"] if admin else [],
        "exp": int(time.time()) + ttl_seconds,
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.secret, algorithm=settings.jwt_algorithm)
