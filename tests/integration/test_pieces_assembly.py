"""A room rendered as chained pieces and assembled reads like the same room rendered whole
(issue 11, first landing: library modules, not yet the job path). Real WeasyPrint, real
pikepdf; the PDFs are read back with pdftotext and pypdf."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import io
import random
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageChops
from pypdf import PdfReader
from snapshot_renderer.assembly import originals
from snapshot_renderer.assembly.document import Assembled, assemble
from snapshot_renderer.assembly.merge import merge, page_count
from snapshot_renderer.pieces.chain import ChainedPiece, render_chain
from snapshot_renderer.pieces.chunks import cut
from snapshot_renderer.pieces.plan import PiecePlan, split
from snapshot_renderer.render import worker
from snapshot_renderer.render.piece_jobs import Stamp, assembly_job, stamp_job, stamp_total
from snapshot_renderer.render.pieces import RenderedPiece, render_stamp
from snapshot_renderer.render.view import build_context
from snapshot_shared.chunking import ChunkPolicy
from snapshot_shared.hashing import content_hash
from snapshot_shared.messages import RenderOptions, SnapshotPayload
from snapshot_shared.pdf_identity import read_content_hash
from support.hostile import (
    ConnectionCounter,
    body_text,
    hostile_bodies,
    missing_glyphs,
    shows,
    visible_form,
)
from weasyprint import CSS, HTML

START = dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC)
FINGERPRINT = "0" * 64
WORDS = ("budget", "review", "ship", "launch", "design", "sprint", "retro", "customer", "latency")
MARK = re.compile(r"\bm(\d{4})x\b")

pytestmark = pytest.mark.skipif(
    not (shutil.which("pdftotext") and shutil.which("pdftoppm")), reason="needs poppler-utils"
)


def room(count: int) -> dict[str, Any]:
    """``count`` messages, one every 19 minutes (several days), bodies of 10-40 words with the
    odd line break, each starting with its marker ``m0001x``."""
    rng = random.Random(11)
    messages = []
    for i in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(10, 40))]
        if i % 6 == 0:
            words.insert(len(words) // 2, "\n")
        messages.append(
            {
                "id": str(uuid.UUID(int=i + 1)),
                "author_id": ("ada", "bea", "cy")[i % 3],
                "author_name": ("Ada", "Bea", "Cy")[i % 3],
                "created_at": (START + dt.timedelta(minutes=19 * i)).isoformat(),
                "body": f"m{i:04d}x " + " ".join(words).replace(" \n ", "\n"),
                "kind": ("message", "message", "note", "decision")[i % 4],
            }
        )
    return {
        "room": {"id": str(uuid.UUID(int=0)), "name": "Pieces room", "created_at": START},
        "sections": ["members", "messages"],
        "members": [
            {"user_id": u, "display_name": u.title(), "role": "editor", "joined_at": START}
            for u in ("ada", "bea", "cy")
        ],
        "messages": messages,
        "as_of": messages[-1]["created_at"],
    }


def page_texts(pdf: bytes) -> list[str]:
    """Each page's text, whitespace-normalised (pdftotext separates pages with form feeds)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.pdf"
        path.write_bytes(pdf)
        out = subprocess.run(
            ["pdftotext", str(path), "-"], capture_output=True, check=True
        ).stdout.decode()
    return [" ".join(page.split()) for page in out.split("\f")[:-1]]


def raster(pdf: bytes, prefix: Path) -> list[Image.Image]:
    """Each page as a 50 dpi grey bitmap (pdftoppm)."""
    prefix.with_suffix(".pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "50", "-gray", str(prefix.with_suffix(".pdf")), str(prefix)], check=True
    )
    return [Image.open(p) for p in sorted(prefix.parent.glob(prefix.name + "-*.pgm"))]


def looks_alike(a: Image.Image, b: Image.Image) -> bool:
    """No pixel differs by more than a quarter of the grey scale: a seam placed to a fraction of
    a pixel may shade a rule's edge differently (seen: 5 of 255), a moved line of text cannot
    hide."""
    return a.size == b.size and ImageChops.difference(a, b).getextrema()[1] <= 64


def differing_pages(reference: bytes, ours: bytes, tmp_path: Path, pages: int) -> list[int]:
    """The pages (from 1) of ``ours`` that do not look like ``reference``'s; both must have
    ``pages`` pages."""
    theirs, mine = raster(reference, tmp_path / "ref"), raster(ours, tmp_path / "ours")
    assert len(theirs) == len(mine) == pages
    return [
        n for n, (a, b) in enumerate(zip(theirs, mine, strict=True), 1) if not looks_alike(a, b)
    ]


def marks(text: str) -> list[int]:
    return [int(m) for m in MARK.findall(text)]


@dataclass
class Assembly:
    raw: dict[str, Any]
    plan: PiecePlan
    chain: list[ChainedPiece]
    stamp: bytes
    result: Assembled

    @property
    def rendered(self) -> list[RenderedPiece]:
        return [c.rendered for c in self.chain]


def build(raw: dict[str, Any], cache: dict[str, RenderedPiece] | None = None) -> Assembly:
    payload, options = SnapshotPayload.model_validate(raw), RenderOptions()
    plan = split(payload, options)
    chain = render_chain(plan, FINGERPRINT, cache)
    rendered = [c.rendered for c in chain]
    stamp = stamp_job(payload, options, page_count(rendered))  # as the render worker does
    result = assemble(rendered, stamp.pdf, content_hash(raw, {}, "snapshot"), stamp.pages)
    return Assembly(raw, plan, chain, stamp.pdf, result)


@pytest.fixture(scope="module")
def whole() -> tuple[bytes, int]:
    return worker.render_pdf(room(600), {}, "snapshot")


@pytest.fixture(scope="module")
def cache() -> dict[str, RenderedPiece]:
    return {}


@pytest.fixture(scope="module")
def pieces(cache: dict[str, RenderedPiece]) -> Assembly:
    return build(room(600), cache)


def test_the_room_is_cut_into_chained_pieces(pieces: Assembly) -> None:
    assert len(pieces.plan.sections) == 1
    chunks = pieces.plan.sections[0]
    assert len(chunks) >= 12  # at most 50 messages a chunk
    assert [r.chained for r in pieces.rendered] == [False, False] + [True] * (len(chunks) - 1)


def test_as_many_pages_as_the_whole_render_give_or_take_the_cover(
    pieces: Assembly, whole: tuple[bytes, int]
) -> None:
    # The cover (title, facts, members) ends its own page where the whole render goes on with
    # the messages, so the timeline starts one page later: at most one page more (here the
    # whole render's last page had room for the shift: 45 pages both).
    _pdf, whole_pages = whole
    assert whole_pages <= pieces.result.pages <= whole_pages + 1
    assert len(PdfReader(io.BytesIO(pieces.result.pdf)).pages) == pieces.result.pages


def test_every_message_is_there_once_and_in_order(
    pieces: Assembly, whole: tuple[bytes, int]
) -> None:
    found = marks(" ".join(page_texts(pieces.result.pdf)))
    assert found == list(range(600))
    assert marks(" ".join(page_texts(whole[0]))) == found


def whole_with_a_fresh_timeline(raw: dict[str, Any]) -> bytes:
    """The room rendered whole, its timeline moved to a fresh page as the cover piece ends its
    page: what an assembly of its pieces should look like."""
    state = worker._get_state()
    html_text = state.env.get_template("snapshot.html.j2").render(
        build_context(SnapshotPayload.model_validate(raw), RenderOptions())
    )
    fresh = CSS(string="section.timeline { break-before: page; }")
    return bytes(
        HTML(string=html_text, base_url=state.base_url, url_fetcher=state.fetcher)
        .render(font_config=state.font_config, stylesheets=[*state.stylesheets["A4"], fresh])
        .write_pdf()
    )


def test_pages_look_like_a_whole_render_with_the_timeline_on_a_fresh_page(
    pieces: Assembly, tmp_path: Path
) -> None:
    """The seams are invisible: rendered whole, with only its timeline moved to a fresh page
    (as the cover piece ends its page), the room has the same messages on every page and the
    same pixels on every page but the section heading's (page 2: "Messages from …")."""
    reference = whole_with_a_fresh_timeline(pieces.raw)
    ours = page_texts(pieces.result.pdf)
    assert [marks(t) for t in page_texts(reference)] == [marks(t) for t in ours]
    assert differing_pages(reference, pieces.result.pdf, tmp_path, len(ours)) == [2]


def test_seam_pages_hold_the_end_of_one_piece_and_the_start_of_the_next(
    pieces: Assembly,
) -> None:
    texts = page_texts(pieces.result.pdf)
    section = pieces.plan.sections[0]
    both = 0
    for k in range(1, len(section)):
        before, rendered = section[k - 1], pieces.rendered[k + 1]  # [0] is the cover
        seam = page_count(pieces.rendered[: k + 2]) - rendered.pages
        on_seam = marks(texts[seam])
        assert int(before.messages[-1].id) - 1 in on_seam, (k, seam, on_seam)
        # What the piece put on its first page (nothing when its first message did not fit
        # below the seam, as a whole render would break there too) is on the seam page.
        first_page = marks(page_texts(rendered.pdf)[0])
        own = range(int(section[k].messages[0].id) - 1, int(section[k].messages[-1].id))
        assert first_page == [m for m in on_seam if m in own]  # (pieces after it may follow)
        both += bool(first_page)
    assert both >= len(section) // 2


def test_footers_and_header_run_on_after_the_merge(pieces: Assembly) -> None:
    texts = page_texts(pieces.result.pdf)
    total = len(texts)
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {total}" in text
        assert text.count("Page ") == 1 and "Room Snapshots" in text
        header = "As of " in text
        assert header == (number > 1), number
    assert all("Pieces room" in t and "As of 10 Mar 2026, 04:41 UTC" in t for t in texts[1:])


def test_the_outline_has_the_title_the_members_the_section_and_each_day(
    pieces: Assembly, whole: tuple[bytes, int]
) -> None:
    reader = PdfReader(io.BytesIO(pieces.result.pdf))
    texts = page_texts(pieces.result.pdf)
    (title, (members, section, days)) = reader.outline
    assert title.title == "Snapshot of Pieces room"
    assert members.title == "Members"
    assert section.title == "Messages from Monday, 2 March 2026"
    # One entry per day (600 messages 19 minutes apart: 2 to 10 March), as in the whole render.
    (_title, (_members, _messages, whole_days)) = PdfReader(io.BytesIO(whole[0])).outline
    assert [d.title for d in days] == [d.title for d in whole_days]
    assert days[0].title == "Monday, 2 March 2026" and days[-1].title == "Tuesday, 10 March 2026"
    for day in days:
        assert day.title in texts[reader.get_destination_page_number(day)]


def font_programs(pdf_bytes: bytes) -> dict[str, bytes]:
    """The embedded TrueType programs by font name; fails on one name for two programs."""
    names: dict[str, bytes] = {}
    pdf = pikepdf.open(io.BytesIO(pdf_bytes))
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Dictionary) and obj.get("/Type") == "/FontDescriptor":
            program = obj.get("/FontFile2")
            if program is not None:
                data = program.read_bytes()
                assert names.setdefault(str(obj.FontName), data) == data, obj.FontName
    return names


def test_the_pdf_carries_the_content_hash_and_its_metadata(pieces: Assembly) -> None:
    with tempfile.TemporaryFile() as f:
        f.write(pieces.result.pdf)
        f.flush()
        found = read_content_hash(f.fileno(), len(pieces.result.pdf))
    assert found == content_hash(pieces.raw, {}, "snapshot")
    pdf = pikepdf.open(io.BytesIO(pieces.result.pdf))
    assert pdf.docinfo["/Title"] == "Snapshot of Pieces room"
    assert str(pdf.docinfo["/CreationDate"]).startswith("D:20260310")  # the as-of day


def test_each_font_is_embedded_once_as_in_the_whole_render(
    pieces: Assembly, whole: tuple[bytes, int]
) -> None:
    # 13 pieces each embed their own subsets of DejaVu Sans and Sans Bold under one name;
    # assembly merges them into one program per font, holding every glyph the pieces use.
    ours, theirs = font_programs(pieces.result.pdf), font_programs(whole[0])
    assert len(ours) == pieces.result.font_programs == len(theirs) == 3
    sizes = sorted(len(p) for p in ours.values()), sorted(len(p) for p in theirs.values())
    assert all(a <= b * 1.1 for a, b in zip(*sizes, strict=True)), sizes


def font_dictionaries(pdf: pikepdf.Pdf) -> dict[str, list[pikepdf.Dictionary]]:
    """The distinct Type0 font dictionaries the pages draw with (form XObjects' included), by
    base font name (without its subset tag)."""
    found: dict[tuple[int, int], pikepdf.Dictionary] = {}

    def walk(resources: pikepdf.Object) -> None:
        for font in resources.get("/Font", pikepdf.Dictionary()).values():
            if font.get("/Subtype") == "/Type0":
                found.setdefault(font.objgen, font)
        for xobject in resources.get("/XObject", pikepdf.Dictionary()).values():
            if xobject.get("/Subtype") == "/Form" and "/Resources" in xobject:
                walk(xobject.Resources)

    for page in pdf.pages:
        walk(page.Resources)
    by_name: dict[str, list[pikepdf.Dictionary]] = {}
    for font in found.values():
        by_name.setdefault(str(font.BaseFont)[8:], []).append(font)
    return by_name


def glyph_widths(font: pikepdf.Dictionary) -> dict[int, float]:
    """Glyph id -> width of a Type0 font's /W array (``c [w ...]`` runs, as WeasyPrint's)."""
    items, widths = list(font.DescendantFonts[0].W), {}
    for first, run in zip(items[::2], items[1::2], strict=True):
        for n, width in enumerate(run):
            widths[int(first) + n] = float(width)
    return widths


def glyph_text(font: pikepdf.Dictionary) -> dict[int, str]:
    data = font.ToUnicode.read_bytes()
    return {
        int(gid, 16): text.decode()
        for gid, text in re.findall(rb"<([0-9a-f]{4})> <([0-9a-f]+)>", data, re.IGNORECASE)
    }


def test_every_font_is_one_dictionary_that_every_piece_draws_with(pieces: Assembly) -> None:
    """13 pieces each bring a Type0 font of their own for each font (its widths, ToUnicode
    map, descriptor: ~80 MB of the assembling worker for the 2,001 pieces of 100,000
    messages); the document has one of each, holding every piece's glyphs with the same
    widths and text."""
    document = pikepdf.open(io.BytesIO(pieces.result.pdf))
    ours = font_dictionaries(document)
    assert sorted(ours) == ["DejaVu-Sans", "DejaVu-Sans-Bold", "DejaVu-Sans-Mono"]
    assert all(len(fonts) == 1 for fonts in ours.values()), ours
    drawn = 0
    for piece in pieces.rendered:
        own = pikepdf.open(io.BytesIO(piece.pdf))
        for name, fonts in font_dictionaries(own).items():
            (shared,) = ours[name]
            for font in fonts:
                widths, text = glyph_widths(font), glyph_text(font)
                assert widths.items() <= glyph_widths(shared).items(), name
                assert text.items() <= glyph_text(shared).items(), name
                drawn += len(text)
    assert drawn > 3 * sum(len(glyph_text(f)) for fonts in ours.values() for f in fonts)


def test_the_same_pieces_assemble_to_the_same_bytes(pieces: Assembly) -> None:
    digest, total = content_hash(pieces.raw, {}, "snapshot"), stamp_total(pieces.result.pages)
    again = assemble(pieces.rendered, pieces.stamp, digest, total)
    assert again.pdf == pieces.result.pdf
    rendered_again = build(pieces.raw)  # every piece rendered anew, in this process
    assert rendered_again.result.pdf == pieces.result.pdf


def open_documents() -> int:
    gc.collect()
    return sum(isinstance(o, pikepdf.Pdf) for o in gc.get_objects())


def test_merging_keeps_only_the_merged_document_and_the_cover_open(pieces: Assembly) -> None:
    """A piece's parsed document goes once its pages are copied (100,000 messages are 2,001
    pieces: kept open, they took ~140 MB of the assembling worker); what the merged document
    reads from it later (stream data, the seams' form XObjects) does not need it."""
    before = open_documents()
    merged = merge(pieces.rendered)
    assert len(pieces.rendered) == 13  # the cover and 12 chunks
    assert open_documents() - before == 2  # the merged document and the cover's
    buffer = io.BytesIO()
    merged.pdf.save(buffer)
    merged.cover.close()
    assert len(pikepdf.open(buffer).pages) == pieces.result.pages
    assert marks(" ".join(page_texts(buffer.getvalue()))) == list(range(600))  # seams' too


def test_pages_share_their_boxes_and_the_streams_around_their_overlays(pieces: Assembly) -> None:
    """Objects every page would otherwise carry a copy of (~15 a page: ~25 MB of the assembling
    worker for 100,000 messages) are one indirect object each in the document."""
    pdf = pikepdf.open(io.BytesIO(pieces.result.pdf))
    for key in ("/MediaBox", "/TrimBox", "/BleedBox"):
        assert len({page.obj[key].objgen for page in pdf.pages} - {(0, 0)}) == 1, key
        direct = sum(not page.obj[key].is_indirect for page in pdf.pages)
        # pikepdf writes a direct /MediaBox on a page an outline entry opens
        assert direct <= (pieces.result.outline_entries if key == "/MediaBox" else 0), key
    contents = [list(page.obj.Contents) for page in pdf.pages]
    opening = {c[0].objgen for c in contents}
    stamping = {c[-1].objgen for c in contents}
    assert len(opening) == len(stamping) == 1
    assert contents[0][0].read_bytes() == b"q\n"
    assert contents[0][-1].read_bytes() == b"Q\nq /PageStamp Do Q\n"
    assert len(pdf.pages) == pieces.result.pages


def test_a_worker_reads_the_pieces_from_files_and_writes_the_pdf_to_one(
    pieces: Assembly, tmp_path: Path
) -> None:
    """The pool hands the assembling worker files, not bytes (``piece_jobs.assembly_job``): the
    pieces' PDFs are not pickled, nor held all at once; the document comes back as a file.
    Same bytes as assembled from the pieces in memory."""
    files = []
    for index, piece in enumerate(pieces.rendered):
        files.append(str(tmp_path / f"piece-{index}.pdf"))
        Path(files[-1]).write_bytes(piece.pdf)
    bare = [dataclasses.replace(piece, pdf=b"") for piece in pieces.rendered]
    payload = SnapshotPayload.model_validate(pieces.raw)
    frame = payload.model_copy(update={"messages": []})
    target = tmp_path / "document.pdf"
    done = assembly_job(
        bare,
        frame,
        RenderOptions(),
        content_hash(pieces.raw, {}, "snapshot"),
        100,
        str(target),
        files,
    )
    assert done.pages == pieces.result.pages
    assert target.read_bytes() == pieces.result.pdf


def test_appending_ten_messages_renders_the_cover_and_the_tail_only(
    pieces: Assembly, cache: dict[str, RenderedPiece]
) -> None:
    raw = room(610)
    grown = build(raw, cache)
    fresh = [c.piece for c in grown.chain if c.fresh]
    tail = pieces.plan.sections[0][-1].chunk
    assert fresh[0].kind == "cover"
    assert [p.chunk for p in fresh[1:]] and all(p.chunk >= tail for p in fresh[1:])
    assert len(fresh) <= 3
    assert marks(" ".join(page_texts(grown.result.pdf))) == list(range(610))


def test_hostile_content_in_pieces_shows_literally_and_fetches_nothing() -> None:
    with ConnectionCounter() as counter:
        bodies = hostile_bodies(counter.port)
        raw = room(len(bodies))
        for m, body in zip(raw["messages"], bodies.values(), strict=True):
            m["body"] = body
        raw["room"]["name"] = f'<img src="http://127.0.0.1:{counter.port}/room">Room'
        fetcher = worker._get_state().fetcher
        refused = fetcher.refused
        payload, options = SnapshotPayload.model_validate(raw), RenderOptions()
        plan = split(payload, options, ChunkPolicy(max_messages=4))  # several chained pieces
        rendered = [c.rendered for c in render_chain(plan, FINGERPRINT)]
        stamp = render_stamp(payload, options, page_count(rendered))
        out = assemble(rendered, stamp, content_hash(raw, {}, "snapshot"))
    assert counter.connections == 0 and fetcher.refused == refused
    assert len(plan.sections[0]) >= 5
    text = visible_form(body_text(out.pdf))  # inside the margins: bodies run on across pages
    missing = [name for name, body in bodies.items() if not shows(text, name, body)]
    assert missing == []
    header = visible_form(page_texts(out.pdf)[1])  # the stamped running header, literally
    assert visible_form(raw["room"]["name"]) in header
    assert missing_glyphs(out.pdf) == {}


def test_a_scoped_snapshot_renders_its_edges_and_shares_the_sections_after() -> None:
    policy = ChunkPolicy(section_messages=200)  # sections: chunks 0-3, 4-7, 8-11
    full = room(600)
    cache: dict[str, RenderedPiece] = {}
    render_chain(split(SnapshotPayload.model_validate(full), RenderOptions(), policy), "s", cache)
    last = full["messages"][469]["created_at"]
    scoped = dict(full, messages=full["messages"][130:470], as_of=last)
    payload, options = SnapshotPayload.model_validate(scoped), RenderOptions()
    chunks = cut(SnapshotPayload.model_validate(full).messages, policy)
    plan = split(payload, options, policy, first_ordinal=130, room_chunks=chunks)
    chain = render_chain(plan, "s", cache)
    rendered = [c.rendered for c in chain]
    out = assemble(
        rendered,
        render_stamp(payload, options, page_count(rendered)),
        content_hash(scoped, {}, "snapshot"),
    )
    assert marks(" ".join(page_texts(out.pdf))) == list(range(130, 470))
    assert [c.piece.chunk for c in chain if c.piece.edge] == [2, 9]  # cut at 130 and at 470
    # Rendered anew: the cover, both edges, and chunk 3, which chains after the edge and so
    # starts elsewhere than after the whole chunk 2. From the cache: section 1 (fresh page in
    # both) and chunk 8, which opens section 2.
    fresh = [c.piece.chunk for c in chain if c.fresh]
    assert fresh == [None, 2, 3, 9]
    assert [c.piece.chunk for c in chain if not c.fresh] == [4, 5, 6, 7, 8]


def test_stamped_footers_match_weasyprints_own_page_counters(tmp_path: Path) -> None:
    """Page numbers of one to three digits, stamped from samples with their glyphs swapped,
    look exactly as WeasyPrint's margin boxes draw them with counter(page) and counter(pages)."""
    total = 120
    payload, options = SnapshotPayload.model_validate(room(3)), RenderOptions()
    context = build_context(payload, options)
    state = worker._get_state()
    breaks = '<div style="break-before: page"></div>' * (total - 1)
    reference = (
        HTML(
            string=f'<p class="room-name">{context["room_name"]}</p>'
            f'<p class="as-of">{context["as_of"]}</p>{breaks}',
            base_url=state.base_url,
            url_fetcher=state.fetcher,
        )
        .render(
            font_config=state.font_config,
            stylesheets=[
                *state.stylesheets["A4"],
                CSS(string=".room-name, .as-of { visibility: hidden; }"),
            ],
        )
        .write_pdf()
    )
    blank = pikepdf.new()
    opened = pikepdf.open(io.BytesIO(reference))
    size = opened.pages[0].mediabox
    for _ in range(total):
        blank.add_blank_page(page_size=(float(size[2]), float(size[3])))
    buffer = io.BytesIO()
    blank.save(buffer)
    piece = RenderedPiece(buffer.getvalue(), total, False, None, 1122.5, ())
    stamp = render_stamp(payload, options, total)
    assert len(PdfReader(io.BytesIO(stamp)).pages) == 5  # page 1, samples 2, 10, 100, digits
    out = assemble([piece], stamp, content_hash(room(3), {}, "snapshot"))
    texts = page_texts(out.pdf)
    assert [t.split("Page ")[1] for t in texts] == [f"{n} of {total}" for n in range(1, 121)]
    ours, theirs = raster(out.pdf, tmp_path / "ours"), raster(reference, tmp_path / "ref")
    assert len(ours) == len(theirs) == total
    assert [
        n for n, (a, b) in enumerate(zip(ours, theirs, strict=True), 1) if not looks_alike(a, b)
    ] == []


def test_a_room_without_messages_is_its_cover_and_says_so() -> None:
    raw = dict(room(1), messages=[], as_of=None)
    payload, options = SnapshotPayload.model_validate(raw), RenderOptions()
    plan = split(payload, options)
    rendered = [c.rendered for c in render_chain(plan, FINGERPRINT)]
    out = assemble(rendered, render_stamp(payload, options, 1), content_hash(raw, {}, "snapshot"))
    (text,) = page_texts(out.pdf)
    whole, _pages = worker.render_pdf(raw, {}, "snapshot")
    assert text == " ".join(page_texts(whole))
    assert "No messages in this snapshot." in text and "Page 1 of 1" in text


def test_a_stamp_rendered_ahead_for_any_total_with_as_many_digits_gives_the_same_pdf(
    pieces: Assembly, tmp_path: Path
) -> None:
    """The stamp can be rendered before the total is known (beside the pieces of a
    re-snapshot): it is rendered for the least total with as many digits, whose page numbers
    and total are swapped glyph for glyph, so the document's bytes do not depend on whether or
    for which page count it was rendered ahead."""
    payload, options = SnapshotPayload.model_validate(pieces.raw), RenderOptions()
    pages, digest = pieces.result.pages, content_hash(pieces.raw, {}, "snapshot")

    def assembled(name: str, stamp: Stamp | None) -> bytes:
        target = tmp_path / f"{name}.pdf"
        done = assembly_job(
            pieces.rendered, payload, options, digest, 10_000, str(target), None, stamp
        )
        assert done.pages == pages
        return target.read_bytes()

    alone = assembled("alone", None)
    for guess in (10 ** (len(str(pages)) - 1), pages, 10 ** len(str(pages)) - 1):
        assert assembled(f"ahead-{guess}", stamp_job(payload, options, guess)) == alone, guess
    other = stamp_job(payload, options, 10 * pages)  # one digit more: not usable, not used
    assert assembled("other", other) == alone
    texts = page_texts(alone)
    assert len(texts) == pages
    assert all(f"Page {n} of {pages}" in t for n, t in enumerate(texts, start=1))


# --- CJK: the ideographs' font (Noto Sans CJK, CFF) is one program, as in a whole render ----


def cjk_room(count: int) -> dict[str, Any]:
    """``room(count)`` with bodies of 40 random common ideographs after their marker: every
    piece draws its own few thousand glyphs of Noto Sans CJK."""
    rng = random.Random(2)
    raw = room(count)
    for message in raw["messages"]:
        ideographs = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(40))
        message["body"] = message["body"].split(" ", 1)[0] + " " + ideographs
    return raw


def embedded_programs(pdf_bytes: bytes) -> dict[str, bytes]:
    """Every embedded font program (TrueType or CFF) by font name; fails on one name for two
    programs."""
    names: dict[str, bytes] = {}
    pdf = pikepdf.open(io.BytesIO(pdf_bytes))
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Dictionary) and obj.get("/Type") == "/FontDescriptor":
            for key in ("/FontFile2", "/FontFile3"):
                if (program := obj.get(key)) is not None:
                    data = program.read_bytes()
                    assert names.setdefault(str(obj.FontName), data) == data, obj.FontName
    return names


def ideographs(pdf: bytes) -> str:
    return "".join(c for c in "".join(page_texts(pdf)) if "\u4e00" <= c <= "\u9fa5")


@pytest.fixture(scope="module")
def cjk_whole() -> tuple[bytes, int]:
    return worker.render_pdf(cjk_room(150), {}, "snapshot")


@pytest.fixture(scope="module")
def cjk_pieces() -> Assembly:
    return build(cjk_room(150))


def test_a_cjk_room_embeds_each_font_once_and_no_bigger_than_whole(
    cjk_pieces: Assembly, cjk_whole: tuple[bytes, int]
) -> None:
    # Each chunk embeds its own subset of Noto Sans CJK (~2,000 ideographs); assembly cuts one
    # subset holding them all from the original face, as the whole render does.
    assert len(cjk_pieces.chain) >= 3
    ours, theirs = embedded_programs(cjk_pieces.result.pdf), embedded_programs(cjk_whole[0])
    assert len(ours) == cjk_pieces.result.font_programs == len(theirs) == 4
    assert sum(name.endswith("+Noto-Sans-CJK-JP") for name in ours) == 1
    # one font dictionary per font, but for the piece that draws 朐 with the glyph an earlier
    # piece drew 胊 with: it keeps its own ToUnicode map, so that it reads as written
    document = pikepdf.open(io.BytesIO(cjk_pieces.result.pdf))
    dictionaries = {name: len(f) for name, f in font_dictionaries(document).items()}
    assert dictionaries == {
        "DejaVu-Sans": 1, "DejaVu-Sans-Bold": 1, "DejaVu-Sans-Mono": 1, "Noto-Sans-CJK-JP": 2
    }  # fmt: skip
    sizes = sorted(len(p) for p in ours.values()), sorted(len(p) for p in theirs.values())
    assert all(a <= b * 1.1 for a, b in zip(*sizes, strict=True)), sizes
    assert len(cjk_pieces.result.pdf) <= 1.3 * len(cjk_whole[0])


def test_a_cjk_room_reads_and_looks_like_the_whole_render(
    cjk_pieces: Assembly, cjk_whole: tuple[bytes, int], tmp_path: Path
) -> None:
    """The messages' ideographs extract in order (each piece's ToUnicode map still matches the
    glyphs of the one program), and the pages have the same pixels as a whole render with the
    timeline on a fresh page (but the section heading's page)."""
    sent = "".join(m["body"].split(" ", 1)[1] for m in cjk_pieces.raw["messages"])
    assert ideographs(cjk_pieces.result.pdf) == sent
    # The whole render maps a glyph to the first character it drew it for: 朐 (U+6710) and
    # 胊 (U+80CA) share one glyph, and the whole render extracts 胊 for both.
    whole_text = ideographs(cjk_whole[0])
    assert len(whole_text) == len(sent)
    assert sum(a != b for a, b in zip(whole_text, sent, strict=True)) <= 2
    reference = whole_with_a_fresh_timeline(cjk_pieces.raw)
    differing = differing_pages(reference, cjk_pieces.result.pdf, tmp_path, cjk_pieces.result.pages)
    assert differing == [2]


def test_a_cjk_room_assembles_to_the_same_bytes_with_cold_font_caches(
    cjk_pieces: Assembly,
) -> None:
    originals.forget()  # as in a fresh process: faces looked up and subsets cut again
    again = assemble(
        cjk_pieces.rendered,
        cjk_pieces.stamp,
        content_hash(cjk_pieces.raw, {}, "snapshot"),
        stamp_total(cjk_pieces.result.pages),
    )
    assert again.pdf == cjk_pieces.result.pdf


def test_a_subset_that_its_face_does_not_reproduce_is_left_as_it_is(
    cjk_pieces: Assembly,
) -> None:
    """The original face is trusted only if cutting a piece's glyphs from it again gives that
    piece's program: a program changed by one byte finds no face."""
    piece = pikepdf.open(io.BytesIO(cjk_pieces.rendered[1].pdf))
    font = next(f for f in piece.pages[0].Resources.Font.values() if "CJK" in str(f.BaseFont))
    descriptor = font.DescendantFonts[0].FontDescriptor
    program = descriptor.FontFile3.read_bytes()
    to_unicode = font.ToUnicode.read_bytes()
    gids = sorted(
        int(g, 16)
        for g in re.findall(rb"<([0-9a-f]{4})> <", to_unicode[to_unicode.index(b"beginbfchar") :])
    )
    family = str(descriptor.FontFamily)
    originals.forget()
    found = originals.original(family, program, gids, b"digest of the true program")
    assert found is not None and found.face.key[0].endswith(".ttc")
    changed = program[:-1] + bytes([program[-1] ^ 1])
    assert originals.original(family, changed, gids, b"digest of a changed program") is None


def test_if_a_shared_font_cannot_be_cut_the_pieces_keep_their_own_dictionaries(
    pieces: Assembly, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HarfBuzz failing to cut the union of a font's glyphs (``union`` gives ``None``) makes
    the assembly start again without shared dictionaries: every piece keeps its own fonts, and
    the document reads the same."""
    monkeypatch.setattr(originals, "union", lambda *args: None)
    digest, total = content_hash(pieces.raw, {}, "snapshot"), stamp_total(pieces.result.pages)
    result = assemble(pieces.rendered, pieces.stamp, digest, total)
    dictionaries = font_dictionaries(pikepdf.open(io.BytesIO(result.pdf)))
    assert len(dictionaries["DejaVu-Sans"]) > 10  # the cover's, the chunks' and the stamp's
    assert page_texts(result.pdf) == page_texts(pieces.result.pdf)


def test_without_the_original_faces_truetype_subsets_are_merged_holding_every_glyph(
    pieces: Assembly, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback (no HarfBuzz or fontconfig to find the faces): each TrueType font's subsets
    are merged, read one at a time, into one program that has every piece's glyph outlines at
    their ids."""
    monkeypatch.setattr(originals, "available", lambda: False)
    digest, total = content_hash(pieces.raw, {}, "snapshot"), stamp_total(pieces.result.pages)
    result = assemble(pieces.rendered, pieces.stamp, digest, total)
    merged = font_programs(result.pdf)
    assert len(merged) == result.font_programs == 3
    for piece in pieces.rendered:
        for name, program in font_programs(piece.pdf).items():
            ours = next(p for n, p in merged.items() if n[7:] == name[7:])
            sub, union = TTFont(io.BytesIO(program)), TTFont(io.BytesIO(ours))
            for gid, glyph_name in enumerate(sub.getGlyphOrder()):
                glyph = sub["glyf"][glyph_name]
                if glyph.numberOfContours:
                    other = union["glyf"][union.getGlyphOrder()[gid]]
                    assert other.compile(union["glyf"]) == glyph.compile(sub["glyf"]), gid
                    assert union["hmtx"][union.getGlyphOrder()[gid]] == sub["hmtx"][glyph_name]
