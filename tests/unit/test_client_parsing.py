"""The client's pure parts: problem documents to errors, offered file names, JSON Lines input."""

from __future__ import annotations

import json

import httpx
import pytest
from snapshot_client import errors
from snapshot_client.client import filename_from
from snapshot_client.jsonl import JsonlError, parse
from snapshot_client.models import Task
from support.client_api import task


def problem(status: int, body: object, **headers: str) -> errors.ApiProblem:
    content = json.dumps(body).encode() if body is not None else b""
    return errors.problem_from(status, httpx.Headers(headers), content)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, errors.InvalidRequest),
        (401, errors.Unauthorized),
        (403, errors.Forbidden),
        (404, errors.NotFound),
        (409, errors.Conflict),
        (413, errors.InvalidRequest),
        (416, errors.RequestRefused),
        (422, errors.InvalidRequest),
        (500, errors.ServerError),
        (503, errors.ServerError),
    ],
)
def test_status_decides_the_error_class(status: int, kind: type[errors.ApiProblem]) -> None:
    assert type(problem(status, {"code": "x", "detail": "d"})) is kind


def test_problem_fields_and_retry_after() -> None:
    exc = problem(
        503,
        {"code": "unavailable", "detail": "PostgreSQL restarting", "request_id": "r1"},
        **{"Retry-After": "2"},
    )
    assert (exc.status, exc.code, exc.detail, exc.retry_after, exc.request_id) == (
        503,
        "unavailable",
        "PostgreSQL restarting",
        2.0,
        "r1",
    )
    assert str(exc) == "503 unavailable: PostgreSQL restarting"


def test_an_answer_that_is_not_a_problem_document_still_maps() -> None:
    exc = errors.problem_from(502, httpx.Headers({"x-request-id": "r2"}), b"<html>Bad gateway")
    assert isinstance(exc, errors.ServerError)
    assert (exc.code, exc.request_id) == ("http_502", "r2")
    assert "Bad gateway" in exc.detail
    assert problem(404, None).code == "http_404"


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("attachment; filename=\"plan.pdf\"; filename*=UTF-8''pl%C3%A4n.pdf", "plän.pdf"),
        ('attachment; filename="plan.pdf"', "plan.pdf"),
        ("attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd", "passwd"),
        ('attachment; filename="..\\\\evil.pdf"', "evil.pdf"),
        ('attachment; filename=".."', None),
        ("attachment", None),
        (None, None),
    ],
)
def test_offered_file_names_are_reduced_to_a_base_name(header: str | None, name: str) -> None:
    assert filename_from(header) == name


def test_jsonl_objects_strings_and_blank_lines() -> None:
    lines = ['{"body": "a", "kind": "note"}', "", '"b"', "   "]
    assert parse(lines) == [{"body": "a", "kind": "note"}, {"body": "b"}]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "chat:2: not JSON"),
        ("[1, 2]", "chat:2: expected an object or a string"),
        ('{"kind": "note"}', 'chat:2: "body" (a string) is required'),
        ('{"body": "x", "author": "eve"}', "chat:2: unknown field(s) author"),
    ],
)
def test_jsonl_names_the_bad_line(line: str, reason: str) -> None:
    with pytest.raises(JsonlError) as caught:
        parse(['"fine"', line], "chat")
    assert str(caught.value).startswith(reason)


def test_a_task_shows_its_piece_counts_when_the_api_sends_them() -> None:
    older = Task.from_json(task("rendering", 40))  # an API without the fields
    assert (older.pieces_done, older.pieces_total, older.pieces) == (None, None, "")
    unknown = Task.from_json({**task("queued", 0), "pieces_done": None, "pieces_total": None})
    assert unknown.pieces == ""
    rendering = Task.from_json({**task("rendering", 40), "pieces_done": 3, "pieces_total": 40})
    assert (rendering.pieces_done, rendering.pieces_total) == (3, 40)
    assert rendering.pieces == "3/40 pieces"
