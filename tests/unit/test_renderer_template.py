"""What the snapshot template emits per message: no layout work for whitespace nobody sees,
few boxes, and every visible space and every byte of a body kept."""

from __future__ import annotations

import re
import uuid
from typing import Any

from snapshot_renderer.render import worker
from snapshot_renderer.render.templates import get_template
from snapshot_renderer.render.view import build_context
from snapshot_shared.messages import RenderOptions, SnapshotPayload

BODY = "\n  indented first line\n\n\ttabbed  double  spaced \n"


def _payload() -> dict[str, Any]:
    at = "2026-11-24T09:00:00.000000Z"
    messages = [
        {
            "id": str(uuid.UUID(int=i + 1)),
            "author_id": "u-ada",
            "author_name": "Ada",
            "created_at": at,
            "body": body,
            "kind": kind,
        }
        for i, (body, kind) in enumerate(
            [(BODY, "message"), ("Agreed.", "decision"), ("Fonts.", "note")]
        )
    ]
    return {
        "room": {"id": str(uuid.UUID(int=7)), "name": "Design review", "created_at": at},
        "sections": ["members", "messages"],
        "members": [{"user_id": "u-ada", "display_name": "Ada", "role": "owner", "joined_at": at}],
        "messages": messages,
        "as_of": at,
    }


def _html() -> str:
    state = worker._get_state()
    context = build_context(SnapshotPayload.model_validate(_payload()), RenderOptions())
    return get_template(state.env, "snapshot").render(context)


def test_no_line_breaks_or_indentation_between_tags() -> None:
    html = _html()
    body = html[html.index("<body>") :]

    # only the spaces that show: author-time on three messages, time-badge on two
    assert re.findall(r">\s+<", body) == ["> <"] * 5


def test_visible_spaces_and_bodies_are_kept() -> None:
    html = _html()

    assert "<b>Ada</b> <time>09:00</time></p>" in html
    assert '<time>09:00</time> <span class="badge">Decision</span></p>' in html
    assert f'dir="auto">{BODY}</div>' in html


def test_a_message_is_two_blocks_and_its_inline_elements() -> None:
    timeline = _html().split('<section class="timeline">', 1)[1]
    plain = timeline.split('<h3 class="day">', 1)[1].split("</div>", 1)[0]

    assert re.findall(r"<(\w+)", plain) == ["p", "b", "time", "div"]
