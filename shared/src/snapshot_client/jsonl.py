"""Reading a chat export for ``snapshots messages add``: JSON Lines, one message a line.

A line is an object ``{"body": "…", "kind": "message|note|decision"}`` (``kind`` optional) or a
JSON string (the body). Blank lines are skipped. The whole file is checked before anything is
sent, so a bad line changes nothing in the room.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

FIELDS = frozenset({"body", "kind"})


class JsonlError(ValueError):
    """A line is not a message."""


def parse(lines: Iterable[str], source: str = "input") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise JsonlError(f"{source}:{number}: not JSON ({exc.msg})") from None
        if isinstance(value, str):
            value = {"body": value}
        if not isinstance(value, dict):
            raise JsonlError(f"{source}:{number}: expected an object or a string")
        if not isinstance(value.get("body"), str):
            raise JsonlError(f'{source}:{number}: "body" (a string) is required')
        unknown = sorted(set(value) - FIELDS)
        if unknown:
            raise JsonlError(f"{source}:{number}: unknown field(s) {', '.join(unknown)}")
        out.append(value)
    return out
