"""Reading PDFs back the way a person would: text and page count."""

from __future__ import annotations

import io
import shutil
import subprocess

from pypdf import PdfReader


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
