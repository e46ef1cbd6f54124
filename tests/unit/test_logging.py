"""Structured logs: one JSON object a line, bound context, uvicorn's lines in the same format."""

from __future__ import annotations

import json
import logging

import pytest
import uvicorn
from snapshot_shared.logging import bound, logging_config, setup_logging

LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "aio_pika", "demo")


@pytest.fixture(autouse=True)
def restore_logging():
    """Each test configures logging for real; put the process's configuration back after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    others = {
        name: (lg.handlers[:], lg.level, lg.propagate)
        for name in LOGGERS
        for lg in [logging.getLogger(name)]
    }
    try:
        yield
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for name, (handlers, level, propagate) in others.items():
            lg = logging.getLogger(name)
            lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate
        logging.captureWarnings(False)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line]


def test_json_lines_carry_bound_context_and_extras(capsys):
    setup_logging("INFO", "json")
    log = logging.getLogger("demo")
    with bound(request_id="req-1"):
        log.info("outer")
        with bound(task_id="task-9"):
            log.info("inner %s", "formatted", extra={"cache": "miss", "pages": 3})
        log.info("after inner")
    log.info("outside")
    log.debug("not at INFO")

    records = [json.loads(line) for line in _lines(capsys)]
    assert [r["event"] for r in records] == ["outer", "inner formatted", "after inner", "outside"]
    assert all(r["level"] == "info" and r["logger"] == "demo" for r in records)
    assert all(r["at"].endswith("Z") and "T" in r["at"] for r in records)
    assert records[0]["request_id"] == "req-1" and "task_id" not in records[0]
    assert records[1] | {"at": None} == {
        "at": None,
        "level": "info",
        "logger": "demo",
        "event": "inner formatted",
        "request_id": "req-1",
        "task_id": "task-9",
        "cache": "miss",
        "pages": 3,
    }
    assert "task_id" not in records[2] and records[2]["request_id"] == "req-1"
    assert "request_id" not in records[3]


def test_one_valid_json_line_per_event_even_with_newlines_and_tracebacks(capsys):
    setup_logging("INFO", "json")
    log = logging.getLogger("demo")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception('failed: "quoted"\nand a newline, ünïcödé, 雪')
    log.warning("fields cannot overwrite the event", extra={"event": "x", "level": "y"})
    log.info("none values are left out", extra={"request_id": None})

    lines = _lines(capsys)
    assert len(lines) == 3  # tracebacks and newlines are escaped inside one line
    first, second, third = (json.loads(line) for line in lines)
    assert first["event"] == 'failed: "quoted"\nand a newline, ünïcödé, 雪'
    assert first["level"] == "error"
    assert "Traceback" in first["exception"] and "ValueError: boom" in first["exception"]
    assert second["event"] == "fields cannot overwrite the event" and second["level"] == "warning"
    assert (second["event_"], second["level_"]) == ("x", "y")
    assert "request_id" not in third


def test_console_format_is_readable_with_fields(capsys):
    setup_logging("INFO", "console")
    with bound(task_id="t-1"):
        logging.getLogger("demo").info("job completed", extra={"cache": "disk"})
    (line,) = _lines(capsys)
    assert "INFO" in line and "demo: job completed" in line
    assert "task_id=t-1" in line and "cache=disk" in line


def test_level_and_quiet_libraries(capsys):
    setup_logging("WARNING", "json")
    logging.getLogger("demo").info("hidden")
    logging.getLogger("demo").warning("shown")
    setup_logging("DEBUG", "json")
    logging.getLogger("aio_pika").info("library chatter stays out even at DEBUG")
    assert [json.loads(line)["event"] for line in _lines(capsys)] == ["shown"]


def test_warnings_become_json_lines(capsys):
    setup_logging("INFO", "json")
    import warnings

    warnings.warn("deprecated thing", UserWarning, stacklevel=1)
    (line,) = _lines(capsys)
    record = json.loads(line)
    assert record["logger"] == "py.warnings" and "deprecated thing" in record["event"]


async def _app(scope, receive, send):  # pragma: no cover - never called
    raise AssertionError


def test_uvicorn_applies_the_same_format_to_its_own_loggers(capsys):
    """What ``snapshot-api serve`` does: uvicorn configures logging from ``logging_config`` in
    every process, and its own loggers then write JSON lines through our handler."""
    config = uvicorn.Config(
        _app, log_config=logging_config("INFO", "json"), log_level="info", access_log=False
    )
    config.configure_logging()
    with bound(request_id="abc"):
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET / HTTP/1.1" 200')
    # The application factory configures logging again (create_app); nothing changes.
    setup_logging("INFO", "json")
    logging.getLogger("uvicorn.error").warning("still json")
    logging.getLogger("uvicorn.access").info("access log stays off")

    records = [json.loads(line) for line in _lines(capsys)]
    assert [(r["logger"], r["event"]) for r in records] == [
        ("uvicorn.error", "Started server process [42]"),
        ("uvicorn.error", "still json"),
    ]
    assert records[0]["request_id"] == "abc"
    assert not logging.getLogger("uvicorn.error").handlers  # no handler of its own


FORGED = "x\r\n12:00:00 INFO    snapshot_api.access: GET /admin 200\x1b[2J\u2028\x85end"


def test_console_lines_escape_control_characters_in_events_and_fields(capsys):
    setup_logging("INFO", "console")
    with bound(request_id=FORGED):
        logging.getLogger("demo").info("GET %s 404", "/rooms/" + FORGED, extra={"room": FORGED})
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one record, one line (no CR, NEL or U+2028 either)
    (line,) = err.splitlines()  # splitlines() also splits on \r, \x85 and \u2028
    escaped = (
        "x\\x0d\\x0a12:00:00 INFO    snapshot_api.access: GET /admin 200\\x1b[2J\\u2028\\x85end"
    )
    assert f"demo: GET /rooms/{escaped} 404" in line
    assert f"request_id={escaped}" in line and f"room={escaped}" in line
    assert "\x1b" not in line and "\r" not in line


def test_json_lines_hold_no_raw_line_separator_and_keep_the_value(capsys):
    setup_logging("INFO", "json")
    logging.getLogger("demo").info("GET %s", FORGED, extra={"room": FORGED})
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["event"] == f"GET {FORGED}" and record["room"] == FORGED
