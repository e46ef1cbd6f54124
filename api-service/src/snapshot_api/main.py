"""The FastAPI application factory and its lifespan (pool, broker, relay, consumers)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from snapshot_shared.logging import setup_logging

from snapshot_api import problems
from snapshot_api.db.pool import create_pool
from snapshot_api.db.task_events import TaskEventListener, connector
from snapshot_api.denial_windows import DenialWindows
from snapshot_api.deps import reject_unknown_query
from snapshot_api.exit_signals import ExitSignals
from snapshot_api.messaging.broker import Broker
from snapshot_api.messaging.outbox_relay import OutboxRelay
from snapshot_api.messaging.status_consumer import StatusConsumer
from snapshot_api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from snapshot_api.routes import admin, health, rate_limits, rooms, snapshots, tasks, webhooks
from snapshot_api.services.rate_limits import Limiter
from snapshot_api.services.reaper import Reaper
from snapshot_api.services.task_streams import StreamHub
from snapshot_api.settings import Settings, get_settings
from snapshot_api.webhooks.delivery import RetryPolicy, WebhookDelivery
from snapshot_api.webhooks.sender import Sender, SenderConfig

log = logging.getLogger(__name__)
SHUTDOWN_STEP_SECONDS = 10.0


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    pool = await create_pool(settings)
    broker = Broker(str(settings.amqp_url), settings.topology)
    relay = OutboxRelay(
        pool,
        broker,
        settings.outbox_poll_seconds,
        max_attempts=settings.outbox_max_attempts,
        publish_timeout=settings.outbox_publish_timeout_seconds,
        max_message_bytes=settings.outbox_max_message_bytes,
        jobs_per_user=settings.render_jobs_per_user,
        gzip_threshold=settings.gzip_threshold_bytes,
    )
    consumer = StatusConsumer(
        pool,
        settings.store_dir,
        settings.status_prefetch,
        settings.delivery_limit,
        settings.db_pool_max,
        on_finished=relay.kick,  # a user's job finished: the next one may go out
    )
    broker.on_ready(consumer.attach)
    reaper = Reaper(pool, settings.reaper_interval_seconds, on_reaped=relay.kick)
    sender = Sender(SenderConfig.of(settings))
    delivery = WebhookDelivery(
        pool,
        settings.database_dsn,
        sender,
        RetryPolicy(
            settings.webhook_max_attempts,
            settings.webhook_retry_seconds,
            settings.webhook_backoff_seconds,
        ),
        settings.webhook_poll_seconds,
        settings.webhook_concurrency,
    )
    app.state.webhook_sender, app.state.webhook_delivery = sender, delivery
    # Live progress: one LISTEN connection per worker feeds this process's event streams,
    # which end as soon as the server is told to stop (uvicorn waits for open responses).
    hub = StreamHub(settings.sse_streams_per_user)
    listener = TaskEventListener(connector(settings), hub.notify, hub.resync)
    exit_signals = ExitSignals(hub.shutdown)
    app.state.pool, app.state.broker, app.state.relay = pool, broker, relay
    app.state.stream_hub = hub
    app.state.denial_windows = DenialWindows(
        settings.denial_audit_window_seconds, settings.denial_audit_burst
    )
    broker.start()
    relay.start()
    reaper.start()
    delivery.start()
    listener.start()
    exit_signals.install()
    try:
        yield
    finally:
        hub.shutdown()
        exit_signals.remove()
        await _bounded(listener.stop(), "the task event listener")
        await _bounded(delivery.stop(), "the webhook delivery loop")
        await _bounded(sender.close(), "the webhook HTTP client")
        await _bounded(reaper.stop(), "the reaper")
        await _bounded(relay.stop(), "the outbox relay")
        await _bounded(broker.close(), "the RabbitMQ connection")
        await _bounded(app.state.denial_windows.flush_all(pool), "the denial audit flush")
        await _bounded(pool.close(), "the database pool")  # asyncpg terminates it on timeout


async def _bounded(step: Awaitable[None], what: str) -> None:
    """One shutdown step, within SHUTDOWN_STEP_SECONDS: a worker must stop even when a peer
    does not answer (a CI run once hung 300 s in this shutdown; the log says which step)."""
    try:
        await asyncio.wait_for(step, SHUTDOWN_STEP_SECONDS)
    except TimeoutError:
        log.error("shutdown: %s did not finish within %.0fs; going on", what, SHUTDOWN_STEP_SECONDS)
    except Exception:  # noqa: BLE001 - the other steps must still run
        log.exception("shutdown: %s failed", what)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.verification_key  # noqa: B018 - refuse to start without a key for tokens
    setup_logging(settings.log_level, settings.log_format)
    app = FastAPI(
        title="Room Snapshots API",
        version="1.0.0",
        description="Turns a room's members and messages into a PDF snapshot, asynchronously.",
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.settings = settings
    app.state.rate_limiter = Limiter(settings.rate_policies)
    problems.install(app)
    routers = (rooms, snapshots, tasks, webhooks, admin, rate_limits, health)
    for module in routers:
        app.include_router(module.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    return app
