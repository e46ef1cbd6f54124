"""The content hash a rendered PDF carries, and how a reader finds it cheaply.

The renderer writes the snapshot's content hash (DESIGN §3) as the first element of the PDF's
file identifier, the trailer's ``/ID [(<content hash>) (<digest of the bytes>)]`` (ISO 32000
§14.4: the first element is a permanent identifier derived from the content when the file was
first created). The trailer is at a fixed, easily found place: ``startxref`` at the very end
of the file gives the offset of the cross-reference stream, whose dictionary (never compressed)
holds ``/ID``; in a file with a classic ``xref`` table the ``trailer`` dictionary sits just
before ``startxref``. So reading it costs two small ``pread`` calls whatever the page count,
and nothing else of the file is parsed.

The reader is strict on purpose: it accepts only the forms the renderer writes (a literal string
of lowercase hex digits, or those digits as a hex string, as qpdf writes assembled PDFs), and
answers ``None`` for anything else, which the API treats as "not a PDF of this content".
Renderers before issue 13 wrote the first 32 hex digits of the content hash there; ``is_of``
accepts those too, so PDFs stored before an upgrade are still served without a re-render (a
128-bit prefix of SHA-256: no one can make other content match it).
"""

from __future__ import annotations

import os
import re

TAIL_BYTES = 1024  # ``startxref``, its offset and ``%%EOF``; a classic trailer dict too
DICT_BYTES = 4096  # the cross-reference stream's dictionary (about 200 bytes when written)
_STARTXREF = re.compile(rb"startxref\s+(\d{1,20})\s+%%EOF\s*\Z")
_XREF_STREAM = re.compile(rb"\d+\s+\d+\s+obj\s*<<")
_ID = re.compile(rb"/ID\s*\[\s*\(([0-9a-f]{64}|[0-9a-f]{32})\)")
# qpdf (assembly of pieces, issue 11) writes /ID elements as hex strings: the same 64 ASCII
# digits, each as two hex digits (0-9 are 30-39, a-f are 61-66).
_HEX_ID = re.compile(rb"/ID\s*\[\s*<((?:3[0-9]|6[1-6]){64})>")
LEGACY_DIGITS = 32


def identifier(content_hash: str) -> bytes:
    """The PDF file identifier the renderer writes for ``content_hash`` (64 hex digits)."""
    if not re.fullmatch(r"[0-9a-f]{64}", content_hash):
        raise ValueError("a content hash is a SHA-256 hex digest")
    return content_hash.encode("ascii")


def _trailer(fd: int, size: int) -> bytes | None:
    """The bytes of the last trailer dictionary (blocking: at most two ``pread``)."""
    start = max(size - TAIL_BYTES, 0)
    tail = os.pread(fd, size - start, start)
    found = _STARTXREF.search(tail)
    if found is None:
        return None
    offset = int(found.group(1))
    if offset >= size:
        return None
    classic = tail.rfind(b"trailer", 0, found.start())
    if classic >= 0:
        return tail[classic : found.start()]
    head = os.pread(fd, min(DICT_BYTES, size - offset), offset)
    if _XREF_STREAM.match(head) is None:
        return None
    end = head.find(b"stream")
    return head[:end] if end >= 0 else None


def read_content_hash(fd: int, size: int) -> str | None:
    """The content hash in the PDF open on ``fd`` (``size`` bytes), or ``None`` if the file
    carries none in the renderer's form (blocking; does not move the file offset)."""
    trailer = _trailer(fd, size)
    if trailer is None:
        return None
    found = _ID.search(trailer)
    if found:
        return found.group(1).decode("ascii")
    hexed = _HEX_ID.search(trailer)
    return bytes.fromhex(hexed.group(1).decode("ascii")).decode("ascii") if hexed else None


def is_of(found: str | None, content_hash: str) -> bool:
    """Whether ``found`` (from ``read_content_hash``) names ``content_hash``: all of it, or
    the 32-digit prefix that renderers before issue 13 wrote."""
    if found is None:
        return False
    return found == content_hash or (
        len(found) == LEGACY_DIGITS and content_hash[:LEGACY_DIGITS] == found
    )
