"""Per-user rate limits on creating rooms, messages, members and snapshots.

GCRA over PostgreSQL (``db/rate_limits.py``): the API's source of truth already, shared by every
worker and replica, and the check runs in the same transaction as the write it guards, so a
request that fails after its check (403, 409, a deleted room) gives its units back by rolling
back, and a refused one writes nothing. A use case calls ``Quota.take`` after its access checks
and before its first write; the route's ``Quota`` puts the ``RateLimit`` headers on the answer.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from snapshot_api.db import rate_limits as db
from snapshot_api.errors import BatchOverRateLimit, RateLimited
from snapshot_api.rate_policy import Policies, Rate

Clock = Callable[[], dt.datetime]
SECOND_US = 1_000_000


@dataclass(frozen=True)
class Decision:
    """One check's outcome and what the client is told about it."""

    action: str
    rate: Rate
    admitted: bool
    remaining: int  # units left now
    reset: int  # seconds until the whole quota is back
    retry_after: int  # seconds until this request would be admitted (0 when admitted)

    @property
    def headers(self) -> dict[str, str]:
        """draft-ietf-httpapi-ratelimit-headers (structured fields), plus Retry-After on 429."""
        out = {
            "RateLimit-Policy": f'"{self.action}";q={self.rate.quota};w={self.rate.window}',
            "RateLimit": f'"{self.action}";r={self.remaining};t={self.reset}',
        }
        if not self.admitted:
            out["Retry-After"] = str(self.retry_after)
        return out


class Limiter:
    """The deployment's default limits (``None``: rate limiting off) and the clock; the
    per-user overrides live in PostgreSQL and are read by each check, so an administrator's
    change applies at once in every worker."""

    def __init__(self, defaults: Policies | None, clock: Clock | None = None) -> None:
        self.defaults = defaults
        self.clock = clock  # None: the database's clock, one for every replica

    @property
    def enabled(self) -> bool:
        return self.defaults is not None

    def args(self, user_id: str, action: str, cost: int) -> db.TakeArgs:
        """The check's parameters (``db.take_ctes``)."""
        assert self.defaults is not None
        now = self.clock() if self.clock is not None else None
        return db.take_args(user_id, action, self.defaults[action], cost, now)

    async def decide(
        self, conn: asyncpg.Connection, row: asyncpg.Record, user_id: str, action: str, cost: int
    ) -> Decision | None:
        """What a check's ``db.OUTCOME`` row means: ``None`` when the user is not limited for
        the action, else admitted or refused (one more read after a refusal)."""
        if row["quota"] is None:
            return None
        rate = Rate(row["quota"], row["window_seconds"])
        now = row["now"]
        if row["tat"] is not None:
            return _decision(action, rate, now, row["tat"], cost, admitted=True)
        if cost > rate.quota:
            raise BatchOverRateLimit(
                f"This request creates {cost} {action} at once; your limit is {rate}, so at"
                f" most {rate.quota} fit in one request: send smaller batches",
                limit=str(rate),
                cost=cost,
            )
        state = await db.state(conn, user_id, action)
        if state is None:  # refused yet never used: another request's row is gone meanwhile
            return _decision(action, rate, now, now, cost, admitted=False)
        scale = rate.cost_us(1) / state["unit_us"]  # spent under another limit: carried over
        tat = now + max(state["tat"] - now, dt.timedelta(0)) * scale
        return _decision(action, rate, now, tat, cost, admitted=False)


def _decision(
    action: str, rate: Rate, now: dt.datetime, tat: dt.datetime, cost: int, *, admitted: bool
) -> Decision:
    ahead_us = max(_us(tat - now), 0)  # how much of the quota is spent, in time
    window_us = rate.window * SECOND_US
    unit_us = rate.cost_us(1)
    remaining = max(window_us - ahead_us, 0) // unit_us  # unit_us >= 1: quota <= 10**6
    wait_us = ahead_us + rate.cost_us(cost) - window_us  # until this cost fits
    return Decision(
        action=action,
        rate=rate,
        admitted=admitted,
        remaining=min(remaining, rate.quota),
        reset=math.ceil(ahead_us / SECOND_US),
        retry_after=0 if admitted else max(1, math.ceil(wait_us / SECOND_US)),
    )


def _us(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * SECOND_US + delta.microseconds


@dataclass
class Quota:
    """One request's access to one action's limit (``deps.quota``): ``take`` spends units in
    the caller's transaction and hands the headers to the response, or raises 429."""

    limiter: Limiter
    user_id: str
    action: str
    set_headers: Callable[[dict[str, str]], None]

    @property
    def active(self) -> bool:
        return self.limiter.enabled

    async def take(self, conn: asyncpg.Connection, cost: int = 1) -> None:
        if not self.limiter.enabled:
            return
        row = await db.take(conn, self.args(cost))
        await self.settle(conn, row, cost)

    def args(self, cost: int = 1) -> db.TakeArgs:
        """For a write statement that embeds the check (``db.take_ctes``); then ``settle``."""
        return self.limiter.args(self.user_id, self.action, cost)

    async def settle(self, conn: asyncpg.Connection, row: asyncpg.Record, cost: int = 1) -> None:
        """Raise 429 if the check in ``row`` refused (its statement then wrote nothing), else
        hand the RateLimit fields to the response."""
        decision = await self.limiter.decide(conn, row, self.user_id, self.action, cost)
        if decision is None:
            return
        if not decision.admitted:
            raise RateLimited(
                f"You may create {decision.rate} {self.action}; this request needs {cost}"
                f" and {decision.remaining} are left: retry in {decision.retry_after} s",
                headers=decision.headers,
                limit=str(decision.rate),
                retry_after=decision.retry_after,
            )
        self.set_headers(decision.headers)
