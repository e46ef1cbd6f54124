"""The snapshot template on the sample rooms of ``support.samples`` (plain, long words and
names, line breaks on Letter, CJK + emoji + RTL, a day and DST change), against fixed
expectations and against itself: page counts, every message's meta line in the text, no
missing-glyph boxes, and the same room as assembled pieces (issue 11) reading and looking like
the whole render in this run. No stored reference image: a font update may move pixels, and
what is compared here is rendered from the same fonts. (``bench.template_look`` compares the
pixels of this tree's template with a git ref's, for a change that must not alter the look.)"""

from __future__ import annotations

import io
import shutil
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops
from pypdf import PdfReader
from snapshot_renderer.assembly.document import assemble
from snapshot_renderer.assembly.merge import page_count
from snapshot_renderer.pieces.chain import render_chain
from snapshot_renderer.pieces.plan import PiecePlan, split
from snapshot_renderer.render import worker
from snapshot_renderer.render.pieces import render_stamp
from snapshot_renderer.render.view import build_context
from snapshot_shared.chunking import ChunkPolicy
from snapshot_shared.hashing import content_hash
from snapshot_shared.messages import RenderOptions, SnapshotPayload
from support.hostile import missing_glyphs
from support.pdf import pdf_text
from support.samples import SAMPLES
from weasyprint import CSS, HTML

# Pages of the whole render with the fonts of the renderer image (DejaVu, Noto): a change here
# is a change of the look, or of the fonts (then update these along with the fingerprint).
PAGES = {"plain": 4, "long words": 2, "line breaks": 9, "CJK + emoji": 2, "day change": 4}

pytestmark = pytest.mark.skipif(
    not (shutil.which("pdftotext") and shutil.which("pdftoppm")), reason="needs poppler-utils"
)


def render(name: str) -> tuple[dict[str, Any], dict[str, Any], bytes, int]:
    raw, options = SAMPLES[name]()
    pdf, pages = worker.render_pdf(raw, options, "snapshot")
    return raw, options, pdf, pages


def assembled(raw: dict[str, Any], options: dict[str, Any]) -> tuple[PiecePlan, bytes]:
    """The room as chained pieces of at most 5 messages, stamped and merged."""
    payload, opts = SnapshotPayload.model_validate(raw), RenderOptions.model_validate(options)
    plan = split(payload, opts, ChunkPolicy(max_messages=5))
    rendered = [c.rendered for c in render_chain(plan, "0" * 64)]
    stamp = render_stamp(payload, opts, page_count(rendered))
    return plan, assemble(rendered, stamp, content_hash(raw, options, "snapshot")).pdf


def timeline_on_a_fresh_page(raw: dict[str, Any], options: dict[str, Any]) -> bytes:
    """The whole render with its timeline starting on a new page, as the cover piece ends its
    own: what the assembled pieces are to look like."""
    state = worker._get_state()
    payload, opts = SnapshotPayload.model_validate(raw), RenderOptions.model_validate(options)
    html = state.env.get_template("snapshot.html.j2").render(build_context(payload, opts))
    fresh = CSS(string="section.timeline { break-before: page; }")
    document = HTML(string=html, base_url=state.base_url, url_fetcher=state.fetcher).render(
        font_config=state.font_config, stylesheets=[*state.stylesheets[opts.page_size], fresh]
    )
    return bytes(document.write_pdf())


def raster(pdf: bytes, prefix: Path) -> list[Image.Image]:
    """Each page as a 50 dpi grey bitmap."""
    prefix.with_suffix(".pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "50", "-gray", str(prefix.with_suffix(".pdf")), str(prefix)], check=True
    )
    return [Image.open(p) for p in sorted(prefix.parent.glob(prefix.name + "-*.pgm"))]


def meta_lines(raw: dict[str, Any], options: dict[str, Any]) -> list[str]:
    """Each message's meta line as a reader sees it ("Ada Lovelace 09:00 NOTE"), but for a
    right-to-left name (extracted in visual order) or one too long for its line."""
    context = build_context(
        SnapshotPayload.model_validate(raw), RenderOptions.model_validate(options)
    )
    return [
        f"{m['author']} {m['time']}" + (f" {m['kind_label'].upper()}" if m["kind_label"] else "")
        for day in context["days"]
        for m in day.messages
        if len(m["author"]) <= 40 and unicodedata.bidirectional(m["author"][0]) == "L"
    ]


@pytest.mark.parametrize("name", list(SAMPLES))
def test_pages_meta_lines_and_glyphs_of_the_whole_render(name: str) -> None:
    raw, options, pdf, pages = render(name)
    assert pages == PAGES[name] == len(PdfReader(io.BytesIO(pdf)).pages)
    lines = {
        line.strip()
        for page in PdfReader(io.BytesIO(pdf)).pages
        for line in page.extract_text().splitlines()
    }
    metas = meta_lines(raw, options)
    assert len(metas) >= len(raw["messages"]) // 3
    assert [meta for meta in metas if meta not in lines] == []
    assert missing_glyphs(pdf) == {}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_pieces_read_and_look_like_the_whole_render(name: str, tmp_path: Path) -> None:
    raw, options, _pdf, pages = render(name)
    plan, pieces = assembled(raw, options)
    reference = timeline_on_a_fresh_page(raw, options)
    assert len(plan.sections[0]) >= 2  # chained pieces, so seams are compared
    got, want = pdf_text(pieces), pdf_text(reference)
    heading = plan.sections[0][0].heading  # "Messages from <first day>"; whole: "Messages"
    assert heading.startswith("Messages from ")
    assert got[0].replace(heading, "Messages", 1) == want[0]
    assert pages <= got[1] == want[1] <= pages + 1
    ours, theirs = raster(pieces, tmp_path / "pieces"), raster(reference, tmp_path / "ref")
    # No pixel differs by more than a quarter of the grey scale: a seam placed to a fraction of
    # a pixel may shade a rule's edge differently, a moved line of text cannot hide.
    differing = [
        n
        for n, (a, b) in enumerate(zip(ours, theirs, strict=True), 1)
        if a.size != b.size or ImageChops.difference(a, b).getextrema()[1] > 64
    ]
    assert differing == [2]  # only the section heading's page
