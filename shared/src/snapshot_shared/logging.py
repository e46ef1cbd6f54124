"""One logging setup for both services: standard library, context bound per request/job.

``bound(request_id=..., task_id=...)`` sets context variables that every later log line of the
same task (asyncio task or request) carries; ``format="json"`` writes one JSON object a line.

``logging_config`` is the same setup as a ``logging.config.dictConfig`` dictionary, so uvicorn
can apply it in each of its worker processes (``uvicorn.run(log_config=...)``): its own loggers
(``uvicorn.error``, ``uvicorn.access``) then write through our formatter instead of their own.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "snapshot_log_context", default=None
)
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn passes a colourised copy of the message as an extra
}
FIXED_KEYS = ("at", "level", "logger", "event")
QUIET_LOGGERS = ("aiormq", "aio_pika", "fontTools", "weasyprint")
# ``uvicorn.access`` is left alone: ``access_log=False`` switches it off, and the API logs each
# request itself (with its request_id). Configuring it, or its parent ``uvicorn`` (dictConfig
# resets the children of every logger it configures), would switch it back on.
UVICORN_LOGGERS = ("uvicorn.error", "uvicorn.asgi")
# C0 controls (CR, LF, ESC, ...), DEL, C1 controls (NEL) and Unicode's line/paragraph separators:
# anything that could end a console line early, forge a second one, or drive the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# What json.dumps(ensure_ascii=False) leaves raw although some readers split lines on it.
_JSON_RAW = re.compile(r"[\x7f-\x9f\u2028\u2029]")


def escape_control(text: str) -> str:
    """``text`` on one line: each control character as a visible ``\\xNN`` / ``\\uNNNN`` escape."""
    return _CONTROL.sub(lambda m: _escape(m.group()), text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def current_context() -> dict[str, Any]:
    return dict(_context.get() or {})


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Bind ``values`` to every log line emitted inside the block."""
    token = _context.set({**current_context(), **values})
    try:
        yield
    finally:
        _context.reset(token)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """Bound context plus the record's ``extra``; ``None`` values are left out."""
    extra = {k: v for k, v in record.__dict__.items() if k not in _RESERVED}
    return {k: v for k, v in {**current_context(), **extra}.items() if v is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``at``, ``level``, ``logger``, ``event``, then the fields.

    A field named like one of the fixed keys is written with a trailing underscore, so no
    ``extra`` can overwrite the event itself. Tracebacks go into ``exception`` (escaped), so a
    record never spans two lines.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in _fields(record).items():
            line[f"{key}_" if key in FIXED_KEYS else key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        text = json.dumps(line, default=str, ensure_ascii=False)
        return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)  # only inside strings


class ConsoleFormatter(logging.Formatter):
    """Readable in a terminal: time, level, logger, event, then ``key=value`` fields.

    The event and the fields are escaped (``escape_control``): a request path or id holding
    CR/LF cannot forge a log line. Only a traceback spans lines.
    """

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        fields = " ".join(
            f"{escape_control(str(k))}={escape_control(str(v))}" for k, v in _fields(record).items()
        )
        event = escape_control(record.getMessage())
        text = f"{stamp} {record.levelname:<7} {escape_control(record.name)}: {event}"
        if fields:
            text += f"  {fields}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def logging_config(level: str = "INFO", fmt: str = "console") -> dict[str, Any]:
    """The whole setup as a ``dictConfig`` dictionary (also given to uvicorn as ``log_config``).

    Every record goes to the root handler on stderr; uvicorn's loggers get no handler of their
    own and propagate to it, so their lines have the same format as ours.
    """
    formatter = JsonFormatter if fmt == "json" else ConsoleFormatter
    quiet = logging.getLevelName(max(logging.WARNING, logging.getLevelName(level)))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            **{name: {"level": quiet} for name in QUIET_LOGGERS},
            **{name: {"handlers": [], "propagate": True} for name in UVICORN_LOGGERS},
        },
    }


def setup_logging(level: str = "INFO", fmt: str = "console") -> None:
    """Configure the root logger of this process (idempotent; replaces earlier handlers)."""
    logging.config.dictConfig(logging_config(level, fmt))
    logging.captureWarnings(True)  # warnings become log lines in the same format
