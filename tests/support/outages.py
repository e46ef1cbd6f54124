"""Stopping and restarting the machine's RabbitMQ and PostgreSQL for fault tests.

Each outage is a context manager that restores the service in ``finally`` and waits until it
answers again, so a failing test never leaves the shared services down.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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


def _listed(command: str, *items: str) -> list[dict[str, Any]]:
    """``rabbitmqctl <command> <items>``'s rows."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", command, *items, "--formatter", "json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows: list[dict[str, Any]] = json.loads(listed.stdout or "[]")
    return rows


def _connections(name: str) -> list[str]:
    """The broker's process ids of the client connections named ``name`` (the
    ``connection_name`` client property), as ``close_connection`` takes them (the plain
    listing's ``<rabbit@host.N.N.N>``; the JSON one's ``#PID<N.N.N>`` it refuses)."""
    rows = _listed("list_connections", "name", "client_properties")
    wanted = {
        row["name"]
        for row in rows
        if {p[0]: p[2] for p in row["client_properties"]}.get("connection_name") == name
    }
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "name"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    pids = []
    for line in listed.stdout.splitlines()[1:]:  # a header line, then "pid<TAB>name"
        pid, _, connection = line.partition("\t")
        if connection in wanted:
            pids.append(pid)
    return pids


@contextmanager
def connection_cut(name: str) -> Iterator[None]:
    """The client connections named ``name`` closed by the broker, and no new connection
    accepted until the block ends (the listeners suspended, then resumed): for that client, a
    broker restart of the test's length, while the other clients keep their connections."""
    subprocess.run(
        ["rabbitmqctl", "-q", "suspend_listeners"], check=True, capture_output=True, timeout=120
    )
    try:
        pids = _connections(name)
        assert pids, f"no connection named {name!r}"
        for pid in pids:
            subprocess.run(
                ["rabbitmqctl", "-q", "close_connection", pid, "fault test: connection cut"],
                check=True,
                capture_output=True,
                timeout=60,
            )
        _wait(lambda: not _connections(name), f"the connections of {name!r} to close", 60)
        yield
    finally:
        subprocess.run(["rabbitmqctl", "-q", "resume_listeners"], capture_output=True, timeout=120)
        _wait(lambda: _answers(5672), "RabbitMQ to accept connections again")


def queue_depth(name: str) -> tuple[int, int]:
    """Messages ready and delivered-but-unsettled in queue ``name`` (broker-wide view)."""
    for row in _listed("list_queues", "name", "messages_ready", "messages_unacknowledged"):
        if row["name"] == name:
            return int(row["messages_ready"]), int(row["messages_unacknowledged"])
    raise AssertionError(f"no queue {name!r}")


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
