"""Reading ``text/event-stream`` bodies, as the WHATWG HTML standard's event-stream
interpretation says (section 9.2.6), with no I/O: feed it bytes as they arrive, get events.

Written here rather than taken from a library: the whole format is the forty lines below, and
the client needs what the usual libraries leave to their caller (the ``retry`` hint and the last
event id after an event without data), while working on bytes lets a line end split between
two chunks (a CR here, its LF in the next) be read correctly.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerEvent:
    """One dispatched event: its type (``message`` unless named), its data (lines joined with
    LF), and the last event id in force when it was dispatched (``""``: none yet)."""

    event: str
    data: str
    last_event_id: str


class EventStreamParser:
    """Turns chunks of an event stream into ``ServerEvent`` values.

    ``last_event_id`` is the stream's last event id (set by an ``id`` field even on an event
    without data, as an EventSource does), ``retry_ms`` the reconnection time the server asked
    for (``None`` until it does), ``comments`` the comment lines seen (heartbeats)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""  # text after the last complete line
        self._after_cr = False  # the previous chunk ended with CR: a leading LF belongs to it
        self._first = True  # a byte order mark is ignored once, at the very start
        self._data: list[str] = []
        self._type = ""
        self._id_buffer = ""
        self.last_event_id = ""
        self.retry_ms: int | None = None
        self.comments = 0

    def feed(self, chunk: bytes) -> list[ServerEvent]:
        """The events that ``chunk`` completes (an event ends at a blank line)."""
        text = self._decoder.decode(chunk)
        if self._first and text:
            text = text.removeprefix("\ufeff")
            self._first = False
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        if text:
            self._after_cr = text.endswith("\r")
        lines = (self._pending + text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._pending = lines.pop()  # incomplete until its line end arrives
        events = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> ServerEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id":
            if "\0" not in value:
                self._id_buffer = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None  # other field names are ignored

    def _dispatch(self) -> ServerEvent | None:
        self.last_event_id = self._id_buffer
        data, event_type = self._data, self._type or "message"
        self._data, self._type = [], ""
        if not data:
            return None
        return ServerEvent(event_type, "\n".join(data), self.last_event_id)
