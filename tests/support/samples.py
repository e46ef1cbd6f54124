"""Sample rooms for checking how the snapshot template looks: each stresses one thing a message
can do to its layout (``SAMPLES``: name → payload and options)."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable
from typing import Any

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
KINDS = ("message", "note", "decision", "message")
AUTHORS = (("ada", "Ada Lovelace"), ("bea", "Bea"), ("cy", "Cy Young"))
WORDS = ("budget", "review", "ship", "launch", "design", "sprint", "retro", "customer", "latency")

Sample = tuple[dict[str, Any], dict[str, Any]]


def stamp(at: dt.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def payload(
    bodies: list[str],
    *,
    authors: tuple[tuple[str, str], ...] = AUTHORS,
    minutes: int = 23,
    start: dt.datetime = START,
    name: str = "Look sample",
) -> dict[str, Any]:
    """A room with ``bodies`` as its messages, ``minutes`` apart, authors and kinds in turn."""
    messages = [
        {
            "id": str(uuid.UUID(int=i + 1)),
            "author_id": authors[i % len(authors)][0],
            "author_name": authors[i % len(authors)][1],
            "created_at": stamp(start + dt.timedelta(minutes=minutes * i)),
            "body": body,
            "kind": KINDS[i % len(KINDS)],
        }
        for i, body in enumerate(bodies)
    ]
    members = [
        {"user_id": u, "display_name": n, "role": r, "joined_at": stamp(start)}
        for (u, n), r in zip(authors, ("owner", "editor", "viewer", "editor"), strict=False)
    ]
    return {
        "room": {"id": str(uuid.UUID(int=0)), "name": name, "created_at": stamp(start)},
        "sections": ["members", "messages"],
        "members": members,
        "messages": messages,
        "as_of": messages[-1]["created_at"] if messages else stamp(start),
    }


def plain() -> Sample:
    """Sentences of 10-40 words, the odd line break; messages, notes and decisions."""
    rng = random.Random(5)
    bodies = []
    for i in range(40):
        words = [rng.choice(WORDS) for _ in range(rng.randint(10, 40))]
        if i % 5 == 0:
            words.insert(len(words) // 2, "\n")
        bodies.append(f"#{i} " + " ".join(words).replace(" \n ", "\n").capitalize())
    return payload(bodies), {}


def long_words() -> Sample:
    """Words longer than a line, a URL, and author names of the 100-character limit, one with
    spaces (its meta line wraps) and one without."""
    bodies = [
        "x" * 400,
        "see https://example.invalid/" + "/".join(["path-segment"] * 30) + " for details",
        "short " + "supercalifragilistic" * 12 + " end",
        "Ünïcödé " + "ä" * 300,
    ] * 3
    authors = (
        ("w1", " ".join(["Wolfeschlegelsteinhausenbergerdorff"] * 3)[:100]),
        ("w2", "N" * 100),
        ("w3", "Short"),
    )
    return payload(bodies, authors=authors), {}


def line_breaks() -> Sample:
    """Runs of line breaks, blank lines, indentation, tabs and CRLF, on Letter paper."""
    bodies = [
        "\n".join(f"line {n}" for n in range(60)),
        "\n\n\n  indented\n\n\ttabbed\tcolumns\there\n    four spaces",
        "crlf\r\nline\r\nbreaks\r\n",
        "\n" * 120 + "after 120 line breaks",
        "trailing spaces   \n   leading spaces",
    ] * 2
    return payload(bodies), {"page_size": "Letter"}


def cjk_emoji() -> Sample:
    """Chinese, Japanese, Korean, Arabic, Hebrew and emoji (fontconfig falls back to Noto)."""
    bodies = [
        "我们下周发布新版本，请大家检查时间线和快照。" * 6,
        "締め切りは金曜日です。よろしくお願いします。",
        "회의록을 공유합니다. 확인 부탁드립니다.",
        "مرحبا بكم في الاجتماع، القرار النهائي غدا",
        "שלום, ההחלטה התקבלה",
        "Shipped 🚀🎉 thanks 👍🏽 🇩🇪 ❤️ done ✅",
        "Mixed 中文 and English and 😀 in one line",
    ] * 2
    authors = (("li", "李小龙"), ("yuki", "田中 由紀"), ("omar", "عمر"))
    return payload(bodies, authors=authors), {"timezone": "Asia/Tokyo"}


def day_change() -> Sample:
    """Messages 97 minutes apart across four days and a daylight-saving change (Berlin)."""
    start = dt.datetime(2026, 3, 27, 20, 0, tzinfo=dt.UTC)
    bodies = [f"Message {i}: {' '.join(WORDS[: 3 + i % 8])}" for i in range(60)]
    return payload(bodies, minutes=97, start=start), {"timezone": "Europe/Berlin"}


SAMPLES: dict[str, Callable[[], Sample]] = {
    "plain": plain,
    "long words": long_words,
    "line breaks": line_breaks,
    "CJK + emoji": cjk_emoji,
    "day change": day_change,
}
