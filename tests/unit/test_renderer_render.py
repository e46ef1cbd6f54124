"""render_pdf turns a payload into a PDF a person can read, deterministically and safely."""

from __future__ import annotations

import io
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from snapshot_renderer.errors import BadJob
from snapshot_renderer.render import worker
from snapshot_renderer.render.pool import RenderPool
from snapshot_shared.hashing import content_hash
from snapshot_shared.messages import RenderOptions
from snapshot_shared.pdf_identity import read_content_hash

HOSTILE = (
    '<script>alert("x")</script><img src="file:///etc/passwd">'
    '<a href="http://169.254.169.254/">meta</a><style>body{background:url(http://x/)}</style>'
)


def ts(day: int, hour: int, minute: int = 0) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00.000000Z"


def payload(messages: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    if messages is None:
        messages = [
            message("Kick-off: we ship the snapshot feature in December.", ts(24, 9)),
            message("Agreed.\nSecond line kept.", ts(24, 10), kind="decision", author="Bea"),
            message("Remember the fonts.", ts(25, 8, 30), kind="note"),
        ]
    return {
        "room": {"id": str(uuid.UUID(int=7)), "name": "Design review", "created_at": ts(20, 8)},
        "sections": ["members", "messages"],
        "members": [
            {"user_id": "u-ada", "display_name": "Ada", "role": "owner", "joined_at": ts(20, 8)},
            {"user_id": "u-bea", "display_name": "Bea", "role": "editor", "joined_at": ts(21, 9)},
        ],
        "messages": messages,
        "as_of": messages[-1]["created_at"] if messages else None,
        **extra,
    }


def message(body: str, at: str, kind: str = "message", author: str = "Ada") -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, at + body)),
        "author_id": f"u-{author.lower()}",
        "author_name": author,
        "created_at": at,
        "body": body,
        "kind": kind,
    }


def options(**values: Any) -> dict[str, Any]:
    return RenderOptions(**values).model_dump(mode="json")


def text_of(pdf: bytes) -> tuple[str, PdfReader]:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages), reader


def test_small_room_renders_readable_pdf() -> None:
    pdf, pages = worker.render_pdf(payload(), options(timezone="Europe/Berlin"), "snapshot")

    text, reader = text_of(pdf)
    assert pdf.startswith(b"%PDF-")
    assert pages == len(reader.pages) >= 1
    assert "Snapshot of Design review" in text
    assert "Design review" in text
    assert "Kick-off: we ship the snapshot feature in December." in text
    assert "Second line kept." in text and "Remember the fonts." in text
    assert "Ada" in text and "u-bea" in text and "Editor" in text
    assert "DECISION" in text.upper() and "NOTE" in text.upper()
    assert "AS OF" in text.upper() and "25 Nov 2026, 09:30 CET" in text  # 08:30 UTC, Berlin
    assert "Page 1 of" in text
    assert reader.metadata is not None and reader.metadata.title == "Snapshot of Design review"


def test_same_input_gives_identical_bytes() -> None:
    first, _ = worker.render_pdf(payload(), options(), "snapshot")
    second, _ = worker.render_pdf(payload(), options(), "snapshot")
    other, _ = worker.render_pdf(payload(), options(title="Another title"), "snapshot")

    assert first == second
    assert other != first


def test_the_pdf_carries_its_content_hash_where_the_api_reads_it(tmp_path: Path) -> None:
    """The API binds a stored PDF to a snapshot by this value (``pdf_identity``), read from
    the trailer alone; any reader sees it as the document's permanent /ID."""
    data, opts = payload(), options()
    pdf, _ = worker.render_pdf(data, opts, "snapshot")
    path = tmp_path / "a.pdf"
    path.write_bytes(pdf)

    with path.open("rb") as f:
        found = read_content_hash(f.fileno(), len(pdf))
    assert found == content_hash(data, opts, "snapshot")
    assert PdfReader(io.BytesIO(pdf)).trailer["/ID"][0] == found
    other, _ = worker.render_pdf(payload(), options(title="Other"), "snapshot")
    path.write_bytes(other)
    with path.open("rb") as f:
        assert (
            read_content_hash(f.fileno(), len(other))
            == content_hash(payload(), options(title="Other"), "snapshot")
            != found
        )


def test_color_emoji_give_identical_bytes_at_any_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The subset of the color emoji font embedded in the PDF carries a creation time in its
    ``head`` table; the same content must still give the same bytes a day later."""
    emoji = payload([message("Ship it \N{GRINNING FACE}\N{PARTY POPPER}", ts(24, 9))])
    first, _ = worker.render_pdf(emoji, options(), "snapshot")
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 86_400)
    a_day_later, _ = worker.render_pdf(emoji, options(), "snapshot")

    assert a_day_later == first


async def test_identical_bytes_across_worker_processes() -> None:
    in_process, _ = worker.render_pdf(payload(), options(), "snapshot")
    pool = RenderPool(concurrency=1, max_jobs_per_worker=1, timeout_seconds=120)
    try:
        first = await pool.render(payload(), options(), "snapshot")
        second = await pool.render(payload(), options(), "snapshot")  # a recycled worker
    finally:
        await pool.close()

    assert first.pid != second.pid
    assert first.pdf == second.pdf == in_process


def test_title_letter_size_and_sections() -> None:
    body = payload(sections=["messages"])
    pdf, _ = worker.render_pdf(body, options(title="Q4 review", page_size="Letter"), "snapshot")

    text, reader = text_of(pdf)
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (612, 792)
    assert "Q4 review" in text
    assert "Members" not in text and "u-bea" not in text
    assert "Kick-off" in text


def test_hostile_text_is_shown_literally_and_fetches_nothing() -> None:
    state = worker._get_state()
    refused_before = state.fetcher.refused
    body = payload(
        [message(HOSTILE, ts(24, 9), author="<b>Mallory</b>")],
        room={"id": str(uuid.UUID(int=8)), "name": "<i>Room</i>", "created_at": ts(20, 8)},
    )

    pdf, _ = worker.render_pdf(body, options(title="<h1>t</h1>"), "snapshot")

    text, _ = text_of(pdf)
    flat = text.replace("\n", "")
    assert '<script>alert("x")</script>' in flat
    assert 'src="file:///etc/passwd"' in flat
    assert "<b>Mallory</b>" in text and "<i>Room</i>" in text and "<h1>t</h1>" in text
    assert state.fetcher.refused == refused_before  # nothing was even attempted
    assert b"/URI" not in pdf  # no link annotations


def test_very_long_words_wrap_instead_of_overflowing() -> None:
    word = "A" * 3000
    pdf, pages = worker.render_pdf(payload([message(word, ts(24, 9))]), options(), "snapshot")

    text, _ = text_of(pdf)
    assert text.replace("\n", "").count("A" * 100) >= 1
    assert "".join(text.split()).count("A") >= 3000
    assert pages >= 1


def test_empty_room_renders_with_no_as_of() -> None:
    pdf, pages = worker.render_pdf(payload([]), options(), "snapshot")

    text, _ = text_of(pdf)
    assert pages == 1
    assert "No messages in this snapshot." in text
    assert "no messages yet" in text


def test_international_text_renders() -> None:
    body = "Grüße 你好世界 こんにちは 안녕하세요 שלום مرحبا Привет"
    pdf, _ = worker.render_pdf(payload([message(body, ts(24, 9))]), options(), "snapshot")

    text, _ = text_of(pdf)
    for word in ("Grüße", "你好世界", "こんにちは", "안녕하세요", "Привет"):
        assert word in text


@pytest.mark.parametrize(
    ("change", "template"),
    [
        ({"payload": {"room": "nope"}}, "snapshot"),
        ({"options": {"page_size": "A0"}}, "snapshot"),
        ({}, "../etc/passwd"),
        ({}, "missing"),
    ],
)
def test_invalid_input_is_a_bad_job(change: dict[str, Any], template: str) -> None:
    body = change.get("payload", payload())
    opts = change.get("options", options())

    with pytest.raises(BadJob):
        worker.render_pdf(body, opts, template)
