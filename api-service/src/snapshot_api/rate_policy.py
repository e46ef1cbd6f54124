"""Rate limit policies: ``SNAPSHOT_API_RATE_LIMITS`` and the admin overrides, parsed strictly.

A policy ``N/unit`` admits N units per window (one unit per room, member PUT or snapshot, one
per message of a batch). The burst is N too: a user who has been idle may spend the whole
quota at once, and it then refills steadily at one unit every window/N (GCRA, the token
bucket of size N refilled at N per window; ``services/rate_limits.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIONS = ("rooms", "messages", "members", "snapshots")
UNITS = {"second": 1, "minute": 60, "hour": 3600}
_UNIT_OF = {seconds: name for name, seconds in UNITS.items()}
MAX_QUOTA = 1_000_000
# What parse_rate accepts, as a JSON schema pattern (the OpenAPI schema of the admin body).
RATE_PATTERN = r"^(([1-9][0-9]{0,5}|1000000)/(second|minute|hour)|off)$"
OFF = "off"
DEFAULT_RATE_LIMITS = "rooms=30/minute,messages=600/minute,members=120/minute,snapshots=60/minute"
FORMAT = (
    "'off', or comma-separated ACTION=N/UNIT or ACTION=off entries (actions: "
    + ", ".join(ACTIONS)
    + "; units: "
    + ", ".join(UNITS)
    + f"; 1 <= N <= {MAX_QUOTA})"
)


@dataclass(frozen=True)
class Rate:
    """``quota`` units per ``window`` seconds, with a burst of ``quota``."""

    quota: int
    window: int

    def __str__(self) -> str:
        return f"{self.quota}/{_UNIT_OF[self.window]}"

    def cost_us(self, units: int) -> int:
        """What ``units`` cost, in microseconds of the bucket (the database computes the same)."""
        return units * self.window * 1_000_000 // self.quota


# One action's limit: a Rate, or None for unlimited.
Limit = Rate | None
Policies = dict[str, Limit]


def parse_rate(text: str) -> Limit:
    """``'60/minute'`` → Rate(60, 60); ``'off'`` → None; anything else raises ValueError."""
    value = text.strip()
    if value == OFF:
        return None
    count, sep, unit = value.partition("/")
    digits = count.isascii() and count.isdigit() and (count == "0" or not count.startswith("0"))
    if not sep or unit not in UNITS or not digits:
        raise ValueError(f"{text!r} is not a rate: use N/UNIT (units: {', '.join(UNITS)}) or off")
    quota = int(count)
    if not 1 <= quota <= MAX_QUOTA:
        raise ValueError(f"{text!r}: N must be between 1 and {MAX_QUOTA}")
    return Rate(quota, UNITS[unit])


def parse_limits(text: str) -> Policies | None:
    """The whole setting: ``None`` when it is ``off`` (no limiter at all), else every action's
    limit, the listed ones replacing their defaults."""
    if text.strip() == OFF:
        return None
    policies = parse_entries(DEFAULT_RATE_LIMITS)
    policies.update(parse_entries(text))
    return policies


def parse_entries(text: str) -> Policies:
    """``action=rate`` entries, each action at most once; raises ValueError saying what is wrong."""
    if not text.strip():
        raise ValueError(f"empty value: use {FORMAT}")
    out: Policies = {}
    for entry in text.split(","):
        action, sep, rate = (part.strip() for part in entry.partition("="))
        if not sep:
            raise ValueError(f"entry {entry.strip()!r} has no '=': use {FORMAT}")
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r} (actions: {', '.join(ACTIONS)})")
        if action in out:
            raise ValueError(f"action {action!r} is given twice")
        try:
            out[action] = parse_rate(rate)
        except ValueError as exc:
            raise ValueError(f"{action}: {exc}") from None
    return out


def describe(limit: Limit) -> str:
    return OFF if limit is None else str(limit)
