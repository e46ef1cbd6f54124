"""Reading the content hash a PDF carries: the renderer's form only, from the trailer alone."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from snapshot_shared.pdf_identity import identifier, is_of, read_content_hash
from support.pdf import fake_pdf

HASH = hashlib.sha256(b"content").hexdigest()


def read(tmp_path: Path, data: bytes) -> str | None:
    path = tmp_path / "x.pdf"
    path.write_bytes(data)
    with path.open("rb") as f:
        f.seek(3)
        found = read_content_hash(f.fileno(), len(data))
        assert f.tell() == 3  # pread only: the offset a response streams from is untouched
    return found


def test_a_classic_trailer_is_read(tmp_path: Path) -> None:
    assert read(tmp_path, fake_pdf(HASH)) == HASH


def test_a_cross_reference_stream_dictionary_is_read(tmp_path: Path) -> None:
    body = b"%PDF-1.7\n" + b"x" * 3000 + b"\n"
    xref = b"9 0 obj\n<</Type /XRef/Size 10/ID [(" + HASH.encode() + b") (abc)]/Length 3>>\n"
    data = body + xref + b"stream\n\x00\x01\x02\nendstream\nendobj\n"
    data += b"startxref\n%d\n%%%%EOF\n" % len(body)
    assert read(tmp_path, data) == HASH


def test_qpdf_hex_string_form_is_read(tmp_path: Path) -> None:
    # qpdf (assembly of pieces, issue 11) writes every /ID element as a hex string
    hexed = HASH.encode().hex().encode()
    body = b"%PDF-1.5\n" + b"x" * 3000 + b"\n"
    xref = b"9 0 obj\n<< /ID [<" + hexed + b"><0f1e>] /Length 3 /Type /XRef >>\n"
    data = body + xref + b"stream\n\x00\x01\x02\nendstream\nendobj\n"
    data += b"startxref\n%d\n%%%%EOF\n" % len(body)
    assert read(tmp_path, data) == HASH
    assert read(tmp_path, data.replace(hexed, HASH.upper().encode().hex().encode())) is None
    assert read(tmp_path, data.replace(hexed, hexed[:80])) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"%PDF-1.7\nno trailer at all\n%%EOF\n",
        fake_pdf(HASH).replace(b"startxref\n9", b"startxref\n999999"),  # beyond the end
        fake_pdf(HASH.upper()),  # not the renderer's form
        fake_pdf(HASH[:40]),  # neither the whole hash nor the old prefix
        fake_pdf(HASH) + b"appended junk",  # %%EOF is no longer the end
    ],
)
def test_anything_else_carries_no_content_hash(tmp_path: Path, data: bytes) -> None:
    assert read(tmp_path, data) is None


def test_identifier_refuses_what_is_not_a_content_hash() -> None:
    assert identifier(HASH) == HASH.encode()
    with pytest.raises(ValueError):
        identifier("../etc")


def test_the_prefix_older_renderers_wrote_still_names_its_content(tmp_path: Path) -> None:
    """PDFs stored before the upgrade carry the first 32 hex digits: still served."""
    found = read(tmp_path, fake_pdf(HASH[:32]))
    assert found == HASH[:32] and is_of(found, HASH)
    assert not is_of(found, hashlib.sha256(b"other").hexdigest())
    assert is_of(HASH, HASH) and not is_of(None, HASH) and not is_of(HASH[:31], HASH)
