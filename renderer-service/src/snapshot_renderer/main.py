"""``snapshot-renderer``: run one renderer replica until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from snapshot_shared.logging import setup_logging

from snapshot_renderer.service import RendererService
from snapshot_renderer.settings import Settings

log = logging.getLogger("snapshot_renderer")


async def run(settings: Settings) -> None:
    """Start the service, wait for a stop signal, shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    service = RendererService(settings)
    try:
        await service.start()
        log.info("renderer ready", extra={"renderer_id": settings.renderer_id})
        await stop.wait()
        log.info("stop signal received; shutting down")
    finally:
        await service.stop()
    log.info("renderer stopped")


def main() -> None:
    """Console entry point."""
    settings = Settings()
    setup_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(run(settings))
    except Exception:
        log.exception("renderer failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
