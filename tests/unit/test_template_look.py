"""Where the snapshot template puts a message's author, time and badge, read back from the PDF
(poppler's word boxes), against what the look asks for: one regular space and 1.5mm between
author and time, and between time and badge plus the badge's 1.5mm padding; a time that wraps
to a line of its own starts 1.5mm in. The space's width is measured in the same PDF (between
two words of a body), so the checks hold for any version of the fonts. A cheaper markup must
keep these positions (``bench.template_look`` compares whole pages against a git ref)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

import pytest
from snapshot_renderer.render import worker
from support.samples import payload

MM = 72 / 25.4  # PDF points per millimetre
TOLERANCE = 0.05  # points; a bold space instead of a regular one is 0.27 wider
WORD = re.compile(
    r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
)

pytestmark = pytest.mark.skipif(not shutil.which("pdftotext"), reason="needs poppler-utils")


@dataclass(frozen=True)
class Word:
    text: str
    x0: float
    x1: float
    y: float


def words(pdf: bytes) -> list[Word]:
    """Every word on the first page with its box, in reading order."""
    out = subprocess.run(
        ["pdftotext", "-bbox", "-f", "1", "-l", "1", "-", "-"],
        input=pdf,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [
        Word(text, float(x0), float(x1), float(y1))
        for x0, _y0, x1, y1, text in WORD.findall(out)
        if text
    ]


def after(found: list[Word], text: str, start: int = 0) -> tuple[int, Word]:
    """The first word from ``start`` on that is ``text`` (or starts with it, for a word that
    runs off the page and is cut there)."""
    index = next(i for i in range(start, len(found)) if found[i].text.startswith(text))
    return index, found[index]


@pytest.fixture(scope="module")
def page() -> list[Word]:
    authors = (("ada", "Ada Lovelace"), ("n", "N" * 100), ("li", "李小龙"))
    raw = payload(["alpha beta gamma", "one two", "three four"], authors=authors)
    pdf, pages = worker.render_pdf(raw, {}, "snapshot")
    assert pages == 1
    found = words(pdf)
    start, _ = after(found, "Messages")  # the timeline, after the cover's members table
    return found[start:]


@pytest.fixture(scope="module")
def space(page: list[Word]) -> float:
    """The width of a regular 9pt space: the gap between two words of a body."""
    _, alpha = after(page, "alpha")
    _, beta = after(page, "beta")
    assert alpha.y == beta.y
    return beta.x0 - alpha.x1


def test_a_space_and_1_5mm_between_author_and_time(page: list[Word], space: float) -> None:
    i, lovelace = after(page, "Lovelace")
    time = page[i + 1]
    assert time.text == "09:00" and time.y < lovelace.y + 1  # the same line
    assert time.x0 - lovelace.x1 == pytest.approx(space + 1.5 * MM, abs=TOLERANCE)


def test_the_same_after_a_name_in_a_cjk_font(page: list[Word], space: float) -> None:
    i, name = after(page, "李小龙")
    assert page[i + 1].text == "09:46"
    assert page[i + 1].x0 - name.x1 == pytest.approx(space + 1.5 * MM, abs=TOLERANCE)


def test_a_space_1_5mm_and_the_padding_between_time_and_badge(
    page: list[Word], space: float
) -> None:
    i, time = after(page, "09:46")
    badge = page[i + 1]
    assert badge.text == "DECISION"
    assert badge.x0 - time.x1 == pytest.approx(space + 3 * MM, abs=TOLERANCE)


def test_a_time_wrapped_by_a_long_name_starts_1_5mm_in(page: list[Word]) -> None:
    i, name = after(page, "N" * 20)  # 100 N's overflow their line: the time goes to the next
    time = page[i + 1]
    _, body = after(page, "one", i)
    assert time.text == "09:23" and time.y > name.y
    assert time.x0 - body.x0 == pytest.approx(1.5 * MM, abs=TOLERANCE)
