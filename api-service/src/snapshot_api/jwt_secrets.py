"""Refuse HMAC secrets that are too short or publicly known (README: Configuring token
verification). A key shorter than the hash's output weakens HS256/384/512 (RFC 7518 §3.2), and
a value printed in a README, a tutorial or our own development default is no secret at all."""

from __future__ import annotations

import re

DEV_JWT_SECRET = "dev-secret-change-me-0123456789abcdef"
# RFC 7518 §3.2: a key of the same size as the hash output (or larger).
MIN_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
MIN_DISTINCT_CHARACTERS = 8
GENERATE_HINT = (
    'generate one with `python -c "import secrets; print(secrets.token_urlsafe(48))"`'
    " or `openssl rand -base64 48` (64 characters, enough for HS256, HS384 and HS512)"
)
# Compared after lower-casing and dropping everything but letters and digits.
_KNOWN = {
    DEV_JWT_SECRET,
    "at-least-16-characters-long",  # the README's example before issue 13
    "secret",
    "secretkey",
    "jwtsecret",
    "mysecret",
    "supersecret",
    "changeme",
    "password",
    "your-256-bit-secret",  # jwt.io's example
    "your-secret-key",
    "your_jwt_secret",
    "development",
    "test",
}
_PLACEHOLDERS = ("changeme", "replaceme", "yoursecret", "example", "placeholder")


def _normal(value: str) -> str:
    return re.sub(r"[^a-z0-9]", "", value.lower())


KNOWN_SECRETS = frozenset(_normal(v) for v in _KNOWN)


def secret_problem(value: str, algorithm: str) -> str | None:
    """Why ``value`` is not an acceptable ``algorithm`` secret outside development, or None."""
    normal = _normal(value)
    if normal in KNOWN_SECRETS or any(p in normal for p in _PLACEHOLDERS):
        why = "is a published example or default value: anyone can forge tokens with it"
    elif len(set(value)) < MIN_DISTINCT_CHARACTERS:
        why = f"has fewer than {MIN_DISTINCT_CHARACTERS} distinct characters: it is not random"
    else:
        size, needed = len(value.encode()), MIN_SECRET_BYTES[algorithm]
        if size >= needed:
            return None
        why = f"is too short: {size} bytes, and {algorithm} needs at least {needed} bytes"
    return (
        f"SNAPSHOT_API_JWT_SECRET {why}. It is refused outside development"
        f" (SNAPSHOT_API_ENV=development); {GENERATE_HINT}. Better still: RS256 with"
        " SNAPSHOT_API_JWT_ISSUER set (README: Configuring token verification)"
    )
