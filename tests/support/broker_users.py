"""The services' own RabbitMQ users (deploy/rabbitmq/definitions.json), created on the local
broker by the same script ``make run`` and ``.ci/run`` use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "rabbitmq_users.py"
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"
API_USER, RENDERER_USER = "snapshot-api", "snapshot-renderer"


def ensure_broker_users() -> dict[str, str]:
    """Create or update both users (idempotent); returns each user's development AMQP URL."""
    subprocess.run([sys.executable, str(SCRIPT)], check=True, capture_output=True, timeout=120)
    return {
        user: subprocess.run(
            [sys.executable, str(SCRIPT), "--url", user],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        for user in (API_USER, RENDERER_USER)
    }


def rabbitmqctl(*args: str) -> str:
    """``rabbitmqctl -q`` with ``args`` on the local broker: its output (stdin is not read)."""
    return subprocess.run(
        ["rabbitmqctl", "-q", *args],
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    ).stdout


def broker_user_tags() -> dict[str, list[str]]:
    """Every broker user's tags, as `rabbitmqctl list_users` reports them."""
    out = rabbitmqctl("list_users", "--formatter", "json")
    return {row["user"]: list(row["tags"]) for row in json.loads(out)}
