"""``snapshot-api migrate | serve | token``."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from pydantic import ValidationError
from snapshot_shared.logging import logging_config, setup_logging

from snapshot_api.settings import Settings


def _migrate(settings: Settings) -> int:
    from snapshot_api.db.migrate import migrate

    applied = asyncio.run(migrate(settings.migrate_dsn))
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


def _prepare_multiprocess_metrics() -> None:
    """Prometheus multiprocess mode: one fresh directory shared by the uvicorn workers.

    Must run before ``prometheus_client`` is imported (it reads the variable at import time),
    so this module imports nothing that imports it. A directory given by the operator is
    emptied (values of a previous run's workers would otherwise be summed in forever).
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
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
        # uvicorn applies this in every worker process, so its own lines use our format too;
        # requests are logged (with their request_id) by RequestContextMiddleware instead.
        log_config=logging_config(settings.log_level, settings.log_format),
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=20,
    )
    return 0


def _token(settings: Settings, user: str, admin: bool) -> int:
    from snapshot_api.auth import issue_token

    print(issue_token(settings, user, admin=admin))
    return 0


def _describe(exc: Exception) -> str:
    """The settings errors without the values given: a refused secret is not echoed."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    lines = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)


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
            settings.verification_key  # noqa: B018 - fail before starting workers
    except (ValueError, RuntimeError) as exc:
        print(f"snapshot-api: invalid settings: {_describe(exc)}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "serve":
        return _serve(settings)
    return _token(settings, args.user, args.admin)


if __name__ == "__main__":
    sys.exit(main())
