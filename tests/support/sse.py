"""Reading ``text/event-stream`` answers the way a browser's EventSource does, and a pair of
API processes on one database for the fan-out tests (no renderer: the tests play its part by
publishing status events)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import httpx
from snapshot_shared.messages import StatusEvent, encode

from support.services import delete_topology, unique
from support.stack import BIN, Stack, end_process, free_port


@dataclass
class Event:
    event: str
    data: dict[str, Any]
    id: int | None


@dataclass
class EventReader:
    """Events of one open stream, in order; comment lines (heartbeats) and ``retry`` counted."""

    response: httpx.Response
    comments: int = 0
    retry: int | None = None
    ended: bool = False
    _lines: AsyncIterator[str] | None = field(default=None, repr=False)

    async def next(self) -> Event | None:
        """The next event, or ``None`` when the server ended the stream."""
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        fields: dict[str, str] = {}
        async for line in self._lines:
            if line == "":
                if "data" in fields:
                    raw_id = fields.get("id")
                    return Event(
                        fields.get("event", "message"),
                        json.loads(fields["data"]),
                        int(raw_id) if raw_id is not None else None,
                    )
                fields = {}
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "retry":
                self.retry = int(value)
            else:
                fields[name] = value
        self.ended = True
        return None

    async def heartbeat(self) -> str:
        """Read up to the next comment line (skipping nothing else: an event fails it)."""
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        async for line in self._lines:
            if line.startswith(":"):
                self.comments += 1
                return line
            assert line == "", f"an event instead of a heartbeat: {line!r}"
        raise AssertionError("the stream ended")

    async def until_final(self) -> list[Event]:
        """Every event up to the end of the stream (which follows the final event)."""
        events = []
        while (event := await self.next()) is not None:
            events.append(event)
        return events


def status_event(
    created: dict[str, Any], name: str, progress: int = 0, **extra: Any
) -> StatusEvent:
    return StatusEvent(
        task_id=created["task_id"],
        snapshot_id=created["snapshot_id"],
        event=name,
        progress=progress,
        phase=extra.pop("phase", name),
        at=dt.datetime.now(dt.UTC),
        **extra,
    )


async def publish(channel: aio_pika.abc.AbstractChannel, queue: str, event: StatusEvent) -> None:
    """As the renderer does: persistent, on the status queue the job named."""
    body, encoding = encode(event)
    await channel.default_exchange.publish(
        aio_pika.Message(
            body, content_encoding=encoding, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        ),
        routing_key=queue,
    )


class TwoApis(Stack):
    """Two ``snapshot-api serve`` processes (one worker each) on one database. The second has
    a queue prefix of its own, so every status event on the first's ``render.status`` is
    consumed by the first: whatever the second's clients see came through PostgreSQL."""

    def __init__(self, **env: str) -> None:
        super().__init__(workers=1, renderer_env=env or None)
        self.other_prefix = unique("e") + "."
        self.other_port = free_port()
        self.other_base = f"http://127.0.0.1:{self.other_port}"
        self.other: subprocess.Popen[bytes] | None = None
        self.other_metrics = tempfile.mkdtemp(prefix="e2e-prom-")

    @property
    def status_queue(self) -> str:
        return f"{self.prefix}render.status"

    def start(self) -> None:
        self.start_api()
        env = {
            **self.env,
            "SNAPSHOT_API_PORT": str(self.other_port),
            "SNAPSHOT_API_QUEUE_PREFIX": self.other_prefix,
            "PROMETHEUS_MULTIPROC_DIR": self.other_metrics,  # serve empties it at start
        }
        self.other = self._spawn([str(BIN / "snapshot-api"), "serve"], "api2.log", env)
        self._wait_http(self.other_base + "/readyz", self.other, "second api")

    def stop(self) -> None:
        end_process(self.other, grace=30)
        super().stop()
        delete_topology(self.other_prefix)
        shutil.rmtree(self.other_metrics, ignore_errors=True)
