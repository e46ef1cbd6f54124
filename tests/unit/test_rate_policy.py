"""SNAPSHOT_API_RATE_LIMITS and the admin overrides: strict parsing, and what a decision tells
the client (the database side is tests/integration/test_rate_limits.py)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from snapshot_api.rate_policy import (
    DEFAULT_RATE_LIMITS,
    RATE_PATTERN,
    Rate,
    parse_limits,
    parse_rate,
)
from snapshot_api.services.rate_limits import _decision
from snapshot_api.settings import Settings
from test_jwt_secrets import run_cli

DEFAULTS = {
    "rooms": Rate(30, 60),
    "messages": Rate(600, 60),
    "members": Rate(120, 60),
    "snapshots": Rate(60, 60),
}


def test_the_default_is_the_documented_one() -> None:
    assert Settings.model_fields["rate_limits"].default == DEFAULT_RATE_LIMITS
    assert parse_limits(DEFAULT_RATE_LIMITS) == DEFAULTS


def test_listed_actions_replace_their_default_and_off_lifts_a_limit() -> None:
    assert parse_limits(" snapshots = 5/second , messages=off") == {
        **DEFAULTS,
        "snapshots": Rate(5, 1),
        "messages": None,
    }
    assert parse_limits("rooms=1000000/hour")["rooms"] == Rate(1_000_000, 3600)  # type: ignore[index]
    assert parse_limits("off") is None
    assert str(Rate(600, 60)) == "600/minute" and parse_rate("off") is None


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "empty value"),
        ("snapshots", "has no '='"),
        ("pages=1/minute", "unknown action 'pages'"),
        ("rooms=1/minute,rooms=2/minute", "'rooms' is given twice"),
        ("rooms=1/day", "not a rate"),
        ("rooms=1/minutes", "not a rate"),
        ("rooms=0/minute", "between 1 and 1000000"),
        ("rooms=1000001/minute", "between 1 and 1000000"),
        ("rooms=-1/minute", "not a rate"),
        ("rooms=1.5/minute", "not a rate"),
        ("rooms=060/minute", "not a rate"),
        ("rooms=١/minute", "not a rate"),  # a non-ASCII digit
        ("rooms=60/minute;", "not a rate"),
        ("rooms=60/minute,", "has no '='"),
        ("OFF", "has no '='"),
    ],
)
def test_a_bad_value_is_refused_saying_why(value: str, why: str) -> None:
    with pytest.raises(ValueError, match="SNAPSHOT_API_RATE_LIMITS: .*" + why):
        Settings(env="test", jwt_secret="x" * 40, rate_limits=value)


def test_the_schema_pattern_says_what_the_parser_accepts() -> None:
    pattern = re.compile(RATE_PATTERN)
    for text in ("1/second", "600/minute", "999999/hour", "1000000/hour", "off"):
        assert pattern.match(text)
        parse_rate(text)  # accepted
    for text in ("0/hour", "01/hour", "1000001/hour", "1/day", "OFF", "1 /hour", "+1/hour"):
        assert not pattern.match(text)
        with pytest.raises(ValueError):
            parse_rate(text)


def test_serve_refuses_to_start_with_a_bad_value() -> None:
    result = run_cli(
        "serve",
        SNAPSHOT_API_ENV="development",
        SNAPSHOT_API_RATE_LIMITS="snapshots=60/minute,pages=10/minute",
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("snapshot-api: invalid settings: SNAPSHOT_API_RATE_LIMITS:")
    assert "unknown action 'pages' (actions: rooms, messages, members, snapshots)" in result.stderr
    assert "Uvicorn running" not in result.stderr + result.stdout


NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def test_headers_of_an_admitted_and_of_a_refused_request() -> None:
    admitted = _decision("snapshots", Rate(60, 60), NOW, at(48), 1, admitted=True)
    assert admitted.headers == {
        "RateLimit-Policy": '"snapshots";q=60;w=60',
        "RateLimit": '"snapshots";r=12;t=48',
    }
    refused = _decision("snapshots", Rate(60, 60), NOW, at(59.5), 1, admitted=False)
    assert refused.headers == {
        "RateLimit-Policy": '"snapshots";q=60;w=60',
        "RateLimit": '"snapshots";r=0;t=60',
        "Retry-After": "1",  # 0.5 s, rounded up: never 0
    }
    # A batch of 5 with 2 left waits for 3 more units of 6 s each.
    batch = _decision("messages", Rate(10, 60), NOW, at(48), 5, admitted=False)
    assert (batch.remaining, batch.reset, batch.retry_after) == (2, 48, 18)
