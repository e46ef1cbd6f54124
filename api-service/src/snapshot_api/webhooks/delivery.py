"""The webhook delivery loop: claims due deliveries, sends them, records each attempt.

Every API worker runs one; ``FOR UPDATE SKIP LOCKED`` keeps them apart. A new delivery wakes
the loops at once through ``LISTEN webhook_deliveries`` (the tasks trigger notifies); without
a listening connection they poll every ``WEBHOOK_POLL_SECONDS``, which also picks up retries.

At-least-once: a claim commits the attempt number before the request is sent, and the outcome
is recorded after it. A worker that dies between the two leaves the attempt without an outcome;
when its lease ends the delivery goes out again as the next attempt with the same webhook-id,
which receivers use to drop duplicates. No attempt number is ever sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from dataclasses import dataclass

import asyncpg

from snapshot_api.background import BackgroundLoop
from snapshot_api.db import webhooks as db
from snapshot_api.metrics import WEBHOOK_ATTEMPTS
from snapshot_api.webhooks.sender import Outcome, Sender

log = logging.getLogger(__name__)
CHANNEL = "webhook_deliveries"
MAX_DELAY_SECONDS = 3600.0
LEASE_MARGIN_SECONDS = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    retry_seconds: float  # no attempt starts later than this after the event
    backoff_seconds: float  # the first retry's delay; doubling, with jitter

    def next_attempt(
        self, attempt: int, created_at: dt.datetime, now: dt.datetime, outcome: Outcome
    ) -> dt.datetime | None:
        """When to try again after ``attempt`` failed, or None to give up."""
        if outcome.final or attempt >= self.max_attempts:
            return None
        delay = min(self.backoff_seconds * 2 ** (attempt - 1), MAX_DELAY_SECONDS)
        delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, MAX_DELAY_SECONDS))
        when = now + dt.timedelta(seconds=delay)
        if when > created_at + dt.timedelta(seconds=self.retry_seconds):
            return None
        return when


class WebhookDelivery(BackgroundLoop):
    name = "webhook-delivery"

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        sender: Sender,
        policy: RetryPolicy,
        poll_seconds: float,
        batch: int,
    ) -> None:
        super().__init__()
        self.pool, self.dsn, self.sender, self.policy = pool, dsn, sender, policy
        self.poll_seconds, self.batch = poll_seconds, batch
        self.lease_seconds = sender.config.timeout * 2 + LEASE_MARGIN_SECONDS
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    async def stop(self) -> None:
        await super().stop()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.close(), 5)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._listen()
            except Exception as exc:  # noqa: BLE001 - polling still delivers
                log.warning("webhook delivery: not listening for new deliveries: %s", exc)
            try:
                while await self.deliver_once() == self.batch:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                log.warning("webhook delivery round failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def _listen(self) -> None:
        """Keep a connection listening for new deliveries (reopened after it is lost)."""
        if self._listener is not None and not self._listener.is_closed():
            return
        self._listener = None
        conn = await asyncpg.connect(self.dsn, timeout=5)
        await conn.add_listener(CHANNEL, lambda *_: self._wake.set())
        self._listener = conn

    async def deliver_once(self) -> int:
        """Claim and send one batch of due deliveries concurrently; return how many."""
        rows = await db.claim(self.pool, self.batch, self.lease_seconds)
        results = await asyncio.gather(
            *(self._attempt(row) for row in rows), return_exceptions=True
        )
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, Exception):  # its lease runs out; the next attempt follows
                log.warning("webhook attempt of %s not recorded: %s", row["id"], result)
        return len(rows)

    async def _attempt(self, row: asyncpg.Record) -> None:
        if row["secret"] is None:
            outcome = Outcome(False, error="refused: the user has no webhook secret", final=True)
        else:
            outcome = await self.sender.send(
                row["url"], row["id"], row["body"].encode(), bytes(row["secret"])
            )
        now = dt.datetime.now(dt.UTC)
        if outcome.delivered:
            status, retry_at = "delivered", None
        else:
            retry_at = self.policy.next_attempt(row["attempts"], row["created_at"], now, outcome)
            status = "pending" if retry_at is not None else "failed"
        WEBHOOK_ATTEMPTS.labels(outcome=status).inc()
        recorded = await db.record(
            self.pool,
            row["id"],
            row["attempts"],
            status,
            outcome.status_code,
            outcome.error,
            retry_at,
        )
        level = logging.INFO if outcome.delivered else logging.WARNING
        log.log(
            level,
            "webhook attempt %s of %s: %s",
            row["attempts"],
            row["id"],
            outcome.status_code or outcome.error,
            extra={"delivery_id": str(row["id"]), "outcome": status, "recorded": recorded},
        )
