"""Hostile content through the real template, CSS, fonts and WeasyPrint (in this process):
nothing is fetched, every string is in the PDF literally, and no glyph is a missing-glyph box."""

from __future__ import annotations

import logging
import uuid

import pytest
from snapshot_renderer.render import worker
from snapshot_shared.messages import RenderOptions
from support.hostile import (
    ConnectionCounter,
    body_text,
    font_table,
    hostile_bodies,
    missing_glyphs,
    probe,
    shows,
    visible_form,
)
from support.pdf import pdf_text

ROOM_NAME = '<b>Room</b> & "quotes" <script>alert(1)</script>'


def ts(minute: int) -> str:
    return f"2026-11-24T09:{minute:02d}:00.000000Z"


def payload(bodies: dict[str, str], names: list[str]) -> dict:
    messages = [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
            "author_id": f"user-{i % len(names)}",
            "author_name": names[i % len(names)],
            "created_at": ts(i),
            "body": body,
            "kind": ("message", "note", "decision")[i % 3],
        }
        for i, (name, body) in enumerate(bodies.items())
    ]
    return {
        "room": {"id": str(uuid.UUID(int=4)), "name": ROOM_NAME, "created_at": ts(0)},
        "sections": ["members", "messages"],
        "members": [
            {"user_id": f"user-{i}", "display_name": n, "role": "editor", "joined_at": ts(0)}
            for i, n in enumerate(names)
        ],
        "messages": messages,
        "as_of": messages[-1]["created_at"],
    }


def render(data: dict, title: str) -> bytes:
    options = RenderOptions(title=title, timezone="Asia/Tokyo").model_dump(mode="json")
    pdf, pages = worker.render_pdf(data, options, "snapshot")
    assert pages >= 1
    return pdf


def test_hostile_content_renders_literally_fetches_nothing_and_has_every_glyph(caplog):
    caplog.set_level(logging.WARNING, logger="weasyprint")
    with ConnectionCounter() as listener:
        probe(listener.port)  # the counter counts: this is the one connection we expect
        bodies = hostile_bodies(listener.port)
        names = [
            "<img src=x onerror=alert(1)>",
            "سارة",
            "דוד",
            "山田太郎",
            "Zoë 🦊",
            "\u202eevil",
        ]
        title = f'</title><link href="http://127.0.0.1:{listener.port}/t"> url(x) 標題'
        pdf = render(payload(bodies, names), title)
    assert listener.connections == 1, listener.peers

    text = visible_form(body_text(pdf))
    for name, body in bodies.items():
        assert shows(text, name, body), name
    for name in names[:-1]:
        assert visible_form(name) in text, name
    full, pages = pdf_text(pdf)
    assert visible_form(ROOM_NAME) in visible_form(full)
    assert visible_form(title) in visible_form(full)
    assert "root:x:0:0" not in full  # nothing of /etc/passwd was read into the document
    assert pages >= 3  # the 16 KiB message alone spans pages

    assert missing_glyphs(pdf) == {}
    warnings = [r.getMessage() for r in caplog.records]
    assert not [w for w in warnings if ".notdef" in w or "Failed to load" in w], warnings
    fonts = font_table(pdf)
    assert fonts and all(f["emb"] == "yes" and f["uni"] == "yes" for f in fonts), fonts
    used = " ".join(f["name"] for f in fonts)
    for family in ("DejaVu", "CJK", "Emoji", "Symbols"):  # text, CJK, emoji, control pictures
        assert family in used, used


@pytest.mark.parametrize("char", ["\ue000", "\U000f0000"], ids=["private-use", "plane-15"])
def test_the_glyph_check_sees_a_missing_glyph(char, caplog):
    """Characters no installed font has (private use) do print as boxes: the checks notice."""
    caplog.set_level(logging.WARNING, logger="weasyprint")
    pdf = render(payload({"box": f"a box: {char}"}, ["Ada"]), "Boxes")
    assert missing_glyphs(pdf) != {}
    assert any(".notdef" in r.getMessage() for r in caplog.records)
