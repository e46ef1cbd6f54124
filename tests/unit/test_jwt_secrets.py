"""HMAC secrets outside development: each algorithm's minimum length in bytes (RFC 7518 §3.2),
known example values refused, a message that says why and how to generate one, and
`snapshot-api serve` exiting non-zero with that message. No services needed."""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from snapshot_api.jwt_secrets import DEV_JWT_SECRET, GENERATE_HINT
from snapshot_api.settings import Settings

MINIMUM = {"HS256": 32, "HS384": 48, "HS512": 64}
KNOWN = [
    DEV_JWT_SECRET,
    "at-least-16-characters-long",  # the README's example before issue 13
    "secret",
    "Secret",
    "changeme",
    "change-me",
    "CHANGE_ME",
    "your-256-bit-secret",
    # long enough for HS256, but still a placeholder
    "change-me-to-a-long-random-value-of-64-characters-0123456789abcd",
    "replace-me-with-openssl-rand-base64-48-output-xxxxxxxxxxxxxxxxxxx",
]


def random_text(size: int) -> str:
    """``size`` bytes of URL-safe random text (what `secrets.token_urlsafe` gives)."""
    return secrets.token_urlsafe(size)[:size]


def distinct_text(size: int) -> str:
    """``size`` random characters, no two alike (``size`` ≤ 52): enough distinct characters
    for the "not random" check however the draw falls."""
    return "".join(secrets.SystemRandom().sample(string.ascii_letters, size))


def settings(secret: str, algorithm: str = "HS256", env: str = "production") -> Settings:
    return Settings(env=env, jwt_secret=secret, jwt_algorithm=algorithm)


@pytest.mark.parametrize("algorithm", sorted(MINIMUM))
def test_each_algorithm_needs_its_minimum_length_in_bytes(algorithm: str) -> None:
    needed = MINIMUM[algorithm]
    ok = random_text(needed)
    assert settings(ok, algorithm).secret == ok
    with pytest.raises(ValidationError) as refused:
        settings(random_text(needed - 1), algorithm)
    why = f"{needed - 1} bytes, and {algorithm} needs at least {needed} bytes"
    assert why in str(refused.value)
    # Bytes, not characters: three-byte characters count three times.
    wide = "€" * (needed // 3) + distinct_text(needed % 3 + 8)
    assert len(wide) < needed <= len(wide.encode())
    assert settings(wide, algorithm).secret == wide


def test_a_secret_long_enough_for_hs256_is_too_short_for_hs512() -> None:
    value = random_text(40)
    assert settings(value, "HS256").secret == value
    with pytest.raises(ValidationError, match="HS512 needs at least 64 bytes"):
        settings(value, "HS512")


@pytest.mark.parametrize("value", KNOWN)
def test_known_example_values_are_refused_whatever_their_length(value: str) -> None:
    with pytest.raises(ValidationError, match="published example or default value"):
        settings(value, "HS256")


def test_repeated_characters_are_refused() -> None:
    with pytest.raises(ValidationError, match="distinct characters"):
        settings("ab" * 40)


def test_the_message_says_why_and_how_to_generate_one() -> None:
    with pytest.raises(ValidationError) as refused:
        settings("0123456789abcdefghij")
    text = str(refused.value)
    assert "SNAPSHOT_API_JWT_SECRET is too short: 20 bytes" in text
    assert "refused outside development" in text
    assert 'python -c "import secrets; print(secrets.token_urlsafe(48))"' in text
    assert "openssl rand -base64 48" in text
    assert "RS256" in text and "SNAPSHOT_API_JWT_ISSUER" in text
    assert GENERATE_HINT in text


def test_the_generated_value_the_message_suggests_is_accepted_for_every_algorithm() -> None:
    value = secrets.token_urlsafe(48)
    for algorithm in MINIMUM:
        assert settings(value, algorithm).secret == value


def test_development_and_test_environments() -> None:
    assert settings("short", env="development").secret == "short"  # a laptop, by choice
    assert Settings(env="development").secret == DEV_JWT_SECRET
    with pytest.raises(ValidationError):
        settings(DEV_JWT_SECRET, env="test")


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("snapshot-api")
    assert script.exists(), script
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSHOT_API_")}
    # Were the secret accepted, serve would start one worker whose start-up fails at once (no
    # database or broker on port 1) instead of serving: the test fails, and does not hang.
    nowhere = {
        "SNAPSHOT_API_PORT": "0",
        "SNAPSHOT_API_WORKERS": "1",
        "SNAPSHOT_API_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "SNAPSHOT_API_AMQP_URL": "amqp://nobody:nobody@127.0.0.1:1/",
    }
    return subprocess.run(
        [str(script), *args],
        env={**clean, **nowhere, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("short-secret-0123456789", "too short: 23 bytes, and HS256 needs at least 32 bytes"),
        ("changeme", "published example or default value"),
        (DEV_JWT_SECRET, "published example or default value"),
    ],
)
def test_serve_exits_non_zero_with_the_reason(secret: str, why: str) -> None:
    result = run_cli("serve", SNAPSHOT_API_ENV="production", SNAPSHOT_API_JWT_SECRET=secret)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("snapshot-api: invalid settings: SNAPSHOT_API_JWT_SECRET")
    assert why in result.stderr
    assert "openssl rand -base64 48" in result.stderr
    assert secret not in result.stderr  # the refused value is not echoed into logs
    assert "Uvicorn running" not in result.stderr + result.stdout


def test_serve_with_hs512_needs_64_bytes() -> None:
    secret = random_text(48)
    result = run_cli(
        "serve",
        SNAPSHOT_API_ENV="production",
        SNAPSHOT_API_JWT_ALGORITHM="HS512",
        SNAPSHOT_API_JWT_SECRET=secret,
    )
    assert result.returncode == 2, result.stderr
    assert "48 bytes, and HS512 needs at least 64 bytes" in result.stderr
    assert secret not in result.stderr
