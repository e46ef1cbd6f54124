"""``snapshot-api migrate | serve | token``."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from snapshot_shared.logging import setup_logging

from snapshot_api.settings import Settings


def _migrate(settings: Settings) -> int:
    from snapshot_api.db.migrate import migrate

    applied = asyncio.run(migrate(settings.database_dsn))
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


def _prepare_multiprocess_metrics() -> None:
    """Prometheus multiprocess mode: one fresh directory shared by the uvicorn workers."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="snapshot-api-metrics-")


def _serve(settings: Settings) -> int:
    import uvicorn

    _prepare_multiprocess_metrics()
    uvicorn.run(
        "snapshot_api.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=20,
    )
    return 0


def _token(settings: Settings, user: str, admin: bool) -> int:
    from snapshot_api.auth import issue_token

    print(issue_token(settings, user, admin=admin))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="snapshot-api", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create the database if needed and apply migrations")
    sub.add_parser("serve", help="run the HTTP API under uvicorn")
    tok = sub.add_parser("token", help="print a signed token (development and tests)")
    tok.add_argument("user")
    tok.add_argument("--admin", action="store_true")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
        if args.command != "migrate":
            settings.secret  # noqa: B018 - fail before starting workers
    except (ValueError, RuntimeError) as exc:
        print(f"snapshot-api: invalid settings: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "serve":
        return _serve(settings)
    return _token(settings, args.user, args.admin)


if __name__ == "__main__":
    sys.exit(main())
