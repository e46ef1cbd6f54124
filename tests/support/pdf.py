"""Reading PDFs back the way a person would: text and page count; a stand-in stored PDF."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from pypdf import PdfReader
from snapshot_shared import store
from snapshot_shared.messages import Artifact


def pdf_text(data: bytes) -> tuple[str, int]:
    """Whitespace-normalised text and the page count (poppler when present, else pypdf)."""
    reader = PdfReader(io.BytesIO(data))
    pages = len(reader.pages)
    if shutil.which("pdftotext"):
        out = subprocess.run(
            ["pdftotext", "-", "-"], input=data, capture_output=True, check=True
        ).stdout.decode("utf-8", "replace")
    else:
        out = "\n".join(page.extract_text() or "" for page in reader.pages)
    return " ".join(out.split()), pages


def fake_pdf(content_hash: str, filler: bytes = b"0" * 4000) -> bytes:
    """A stand-in for a rendered PDF, for tests that need a stored artifact but no render: not
    a document a viewer could show, only what the API checks, the content hash as the first
    element of the trailer's ``/ID`` (``snapshot_shared.pdf_identity``)."""
    ident = content_hash.encode("ascii")
    return (
        b"%PDF-1.7\n"
        + filler
        + b"\ntrailer\n<</Size 1/ID [("
        + ident
        + b") ("
        + ident
        + b")]>>\nstartxref\n9\n%%EOF\n"
    )


def stored_fake_pdf(
    store_dir: Path, content_hash: str, key: str | None = None, filler: bytes = b"0" * 4000
) -> tuple[Artifact, bytes]:
    """``fake_pdf(content_hash)`` written to the store (under ``key``, by default one derived
    from the content hash), as a renderer would; its ``Artifact`` for a completed event."""
    pdf = fake_pdf(content_hash, filler)
    key = key or hashlib.sha256(content_hash.encode() + b"|stored").hexdigest()
    path = store.pdf_path(store_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    # As a renderer stores: a whole file appears at once (the API may be checking the last
    # one written under this key while a test writes it again).
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    partial.write_bytes(pdf)
    os.replace(partial, path)
    digest = hashlib.sha256(pdf).hexdigest()
    return Artifact(key=key, bytes=len(pdf), pages=1, pdf_sha256=digest), pdf
