"""The client's ``text/event-stream`` parser (``snapshot_client.sse``) against the cases of the
WHATWG event-stream interpretation rules: how lines, fields, comments, ids and ``retry`` read,
wherever the chunks of the body happen to be cut."""

from __future__ import annotations

from snapshot_client.sse import EventStreamParser, ServerEvent


def parse(*chunks: bytes) -> tuple[list[ServerEvent], EventStreamParser]:
    parser = EventStreamParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events, parser


def bytewise(body: bytes) -> list[ServerEvent]:
    return parse(*(body[i : i + 1] for i in range(len(body))))[0]


API_STREAM = (
    b"retry: 2000\n\n"
    b'id: 1\nevent: progress\ndata: {"status": "queued"}\n\n'
    b": heartbeat\n\n"
    b'id: 2\nevent: completed\ndata: {"status": "completed"}\n\n'
)


def test_the_apis_stream_reads_as_events_with_ids_a_retry_and_a_heartbeat() -> None:
    events, parser = parse(API_STREAM)
    assert events == [
        ServerEvent("progress", '{"status": "queued"}', "1"),
        ServerEvent("completed", '{"status": "completed"}', "2"),
    ]
    assert (parser.retry_ms, parser.comments, parser.last_event_id) == (2000, 1, "2")


def test_any_cut_of_the_body_into_chunks_reads_the_same() -> None:
    whole = parse(API_STREAM)[0]
    assert bytewise(API_STREAM) == whole
    for cut in range(len(API_STREAM)):
        assert parse(API_STREAM[:cut], API_STREAM[cut:])[0] == whole, cut


def test_multi_line_data_is_joined_with_line_feeds_and_only_one_space_is_stripped() -> None:
    body = b"data: first\ndata:second\ndata:  third\ndata\ndata: \n\n"
    assert parse(body)[0] == [ServerEvent("message", "first\nsecond\n third\n\n", "")]


def test_cr_lf_crlf_line_ends_all_work_even_when_a_crlf_is_split_between_chunks() -> None:
    for end in (b"\n", b"\r", b"\r\n"):
        body = b"event: progress" + end + b"data: a" + end + b"data: b" + end + end
        assert parse(body)[0] == [ServerEvent("progress", "a\nb", "")], end
        assert bytewise(body) == [ServerEvent("progress", "a\nb", "")], end
    # "\r" at the end of one chunk and "\n" at the start of the next are one line end, not two
    # (two would be a blank line and dispatch "a" on its own)
    assert parse(b"data: a\r", b"\ndata: b\r\n\r\n")[0] == [ServerEvent("message", "a\nb", "")]


def test_utf8_split_inside_a_character_and_a_leading_bom() -> None:
    body = "\ufeffdata: Grüße, 世界 🎉\n\n".encode()
    assert bytewise(body) == [ServerEvent("message", "Grüße, 世界 🎉", "")]
    # a BOM is only skipped at the very start; later it is part of the data
    assert parse(b"data: a\n\n", "data: \ufeffb\n\n".encode())[0][1].data == "\ufeffb"


def test_ids_stay_until_changed_count_without_data_and_refuse_nul() -> None:
    body = b"id: 7\ndata: a\n\ndata: b\n\nid: 8\n\nid: 9\x00x\ndata: c\n\nid\ndata: d\n\n"
    events, parser = parse(body)
    assert [(e.data, e.last_event_id) for e in events] == [
        ("a", "7"),
        ("b", "7"),  # the id is kept for later events
        ("c", "8"),  # "id: 8" had no data, yet it is the last id; an id with NUL is ignored
        ("d", ""),  # an empty id resets it
    ]
    assert parser.last_event_id == ""


def test_retry_needs_digits_comments_and_unknown_fields_are_ignored() -> None:
    events, parser = parse(b"retry: 1500\n\nretry: soon\n\nretry: 15.5\n\n: hi\nfoo: bar\n\n")
    assert (events, parser.retry_ms, parser.comments) == ([], 1500, 1)


def test_an_event_without_its_blank_line_is_not_dispatched() -> None:
    events, _ = parse(b"data: done\n\ndata: cut off\n")
    assert [e.data for e in events] == ["done"]
