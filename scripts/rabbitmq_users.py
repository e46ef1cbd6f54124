#!/usr/bin/env python3
"""Create the services' RabbitMQ users on the local broker, as deploy/rabbitmq/definitions.json
defines them, with fixed development passwords. Idempotent; touches no other user.

    python3 scripts/rabbitmq_users.py               # create or update both users
    python3 scripts/rabbitmq_users.py --url snapshot-api   # print that user's development AMQP URL

The definitions file is the one source of the users' vhost, tags and permissions: compose loads
it into its broker (with the passwords from .env), and this script applies the same entries
with `rabbitmqctl` (add_user or change_password, set_user_tags, set_permissions), because
`rabbitmqctl import_definitions` would also set the file's password placeholders. Standard
library only: `make run`, `.ci/run` and the test suite run it before any virtual environment
matters. Needs to run where `rabbitmqctl` may talk to the node (root on the development
machines; set RABBITMQCTL to another command if needed).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

DEFINITIONS = Path(__file__).resolve().parents[1] / "deploy" / "rabbitmq" / "definitions.json"
# Development values only: the local broker listens on loopback. Compose takes real ones from
# RABBITMQ_API_PASSWORD / RABBITMQ_RENDERER_PASSWORD.
DEV_PASSWORDS = {
    "snapshot-api": "snapshot-api-development",
    "snapshot-renderer": "snapshot-renderer-development",
}
HOST = "127.0.0.1:5672"


def rabbitmqctl(*args: str) -> str:
    command = [*shlex.split(os.environ.get("RABBITMQCTL", "rabbitmqctl")), "-q", *args]
    result = subprocess.run(
        command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60
    )
    if result.returncode != 0:
        shown = " ".join(command[:4])  # never echo a password argument
        raise SystemExit(f"rabbitmq-users: `{shown} ...` failed: {result.stderr.strip()}")
    return result.stdout


def load(path: Path) -> dict[str, Any]:
    definitions: dict[str, Any] = json.loads(path.read_text())
    for user in definitions["users"]:
        if user["name"] not in DEV_PASSWORDS:
            raise SystemExit(f"rabbitmq-users: no development password for {user['name']!r}")
    return definitions


def existing(kind: str) -> set[str]:
    """Names of the broker's users or vhosts."""
    rows = json.loads(rabbitmqctl(f"list_{kind}", "--formatter", "json") or "[]")
    key = "user" if kind == "users" else "name"
    return {row[key] for row in rows}


def apply(definitions: dict[str, Any]) -> None:
    vhosts = existing("vhosts")
    for vhost in definitions.get("vhosts", []):
        if vhost["name"] not in vhosts:
            rabbitmqctl("add_vhost", vhost["name"])
    users = existing("users")
    # One thread per user: each rabbitmqctl call starts a VM and takes a second or more.
    with ThreadPoolExecutor(max_workers=len(definitions["users"])) as pool:
        done = [
            pool.submit(apply_user, u, u["name"] in users, definitions)
            for u in definitions["users"]
        ]
        for future in done:
            print(future.result(), flush=True)


def apply_user(user: dict[str, Any], exists: bool, definitions: dict[str, Any]) -> str:
    name, password = user["name"], DEV_PASSWORDS[user["name"]]
    if exists:
        rabbitmqctl("change_password", name, password)
    else:
        try:
            rabbitmqctl("add_user", name, password)
        except SystemExit:  # another run created it meanwhile
            rabbitmqctl("change_password", name, password)
    rabbitmqctl("set_user_tags", name, *user.get("tags", []))
    grants = [g for g in definitions["permissions"] if g["user"] == name]
    for g in grants:
        rabbitmqctl(
            "set_permissions", "-p", g["vhost"], name, g["configure"], g["write"], g["read"]
        )
    return f"rabbitmq-users: {name} is set on vhost(s) {', '.join(g['vhost'] for g in grants)}"


def url(name: str, definitions: dict[str, Any]) -> str:
    vhost = next(g["vhost"] for g in definitions["permissions"] if g["user"] == name)
    password = quote(DEV_PASSWORDS[name], safe="")
    path = "" if vhost == "/" else quote(vhost, safe="")  # an empty path is the vhost "/"
    return f"amqp://{name}:{password}@{HOST}/{path}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--definitions", type=Path, default=DEFINITIONS)
    parser.add_argument("--url", metavar="USER", help="print USER's development AMQP URL only")
    args = parser.parse_args(argv)
    definitions = load(args.definitions)
    if args.url:
        if args.url not in DEV_PASSWORDS:
            parser.error(f"unknown user {args.url!r}; known: {', '.join(DEV_PASSWORDS)}")
        print(url(args.url, definitions))
        return 0
    apply(definitions)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
