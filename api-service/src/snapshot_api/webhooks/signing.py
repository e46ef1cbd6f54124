"""Standard Webhooks signatures (symmetric, ``v1``): HMAC-SHA256 over ``{id}.{timestamp}.{body}``
keyed by the secret's raw bytes, sent base64-encoded; secrets are shown as ``whsec_<base64>``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
SECRET_BYTES = 32  # the spec asks for at least 24


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def encode(secret: bytes) -> str:
    """The secret as the user sees it once: ``whsec_`` and the base64 of its bytes."""
    return PREFIX + base64.b64encode(secret).decode("ascii")


def sign(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")
