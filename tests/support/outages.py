"""Stopping and restarting the machine's RabbitMQ and PostgreSQL for fault tests.

Each outage is a context manager that restores the service in ``finally`` and waits until it
answers again, so a failing test never leaves the shared services down.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from support.waiting import until_sync


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    until_sync(check, timeout, what, interval=0.2)


def _rabbit_running() -> bool:
    """Whether the broker's app runs; a diagnostics call that hangs (a loaded machine while
    the node boots) means "not yet", and the caller's wait asks again."""
    try:
        checked = subprocess.run(
            ["rabbitmq-diagnostics", "-q", "check_running"], capture_output=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        return False
    return checked.returncode == 0 and _answers(5672)


@contextmanager
def broker_down() -> Iterator[None]:
    """RabbitMQ's app stopped (the node keeps running), restarted afterwards."""
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True, timeout=120)
    try:
        _wait(lambda: not _answers(5672), "RabbitMQ to stop", 60)
        yield
    finally:
        subprocess.run(["rabbitmqctl", "-q", "start_app"], capture_output=True, timeout=180)
        _wait(_rabbit_running, "RabbitMQ to come back")


def _cluster() -> str:
    return sorted(os.listdir("/etc/postgresql"))[0]


@contextmanager
def database_down() -> Iterator[None]:
    """PostgreSQL stopped (fast shutdown), started afterwards."""
    version = _cluster()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop", "-m", "fast"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield
    finally:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            capture_output=True,
            timeout=120,
        )
        _wait(lambda: _answers(5432), "PostgreSQL to come back")
