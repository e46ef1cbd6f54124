"""Hostile room content, a listener that counts every connection made to it, and checks of a
PDF's text and fonts (no missing-glyph boxes)."""

from __future__ import annotations

import io
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import unicodedata
from dataclasses import dataclass, field

from fontTools.ttLib import TTFont
from pypdf import PdfReader


@dataclass
class ConnectionCounter:
    """A TCP listener on 127.0.0.1 that accepts and counts connections (any protocol), so a
    test can prove that rendering fetched nothing, not even a refused-after-connect request."""

    port: int = 0
    connections: int = 0
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    peers: list[str] = field(default_factory=list)

    def __enter__(self) -> ConnectionCounter:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        self._sock, self.port = sock, sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, peer = self._sock.accept()
            except OSError:  # closed by __exit__
                return
            self.connections += 1
            self.peers.append(f"{peer[0]}:{peer[1]}")
            conn.close()

    def __exit__(self, *exc: object) -> None:
        assert self._sock is not None and self._thread is not None
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)


def probe(port: int) -> None:
    """Connect once, as a fetch would (proves the counter counts)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def hostile_bodies(port: int) -> dict[str, str]:
    """Message texts that try markup, style, URL fetches and every kind of awkward Unicode."""
    url = f"http://127.0.0.1:{port}"
    lines = "".join(
        f"Line {i:03d}: the quick brown fox jumps over — ünïcödé ✓\n" for i in range(300)
    )
    cut = lines.encode()[: 16 * 1024].decode("utf-8", "ignore")  # whole characters only
    sixteen_kib = cut + "." * (16 * 1024 - len(cut.encode()))  # exactly the 16 KiB limit
    return {
        "script": f'<script>fetch("{url}/script")</script><b>not bold</b>',
        "style": f"<style>@import url({url}/import.css); body {{ background: url({url}/bg) }}"
        "</style>",
        "img-file": '<img src="file:///etc/passwd">',
        "link": f'<link rel="stylesheet" href="{url}/">',
        "url": f"url({url}/url) url('file:///etc/shadow') url(data:text/css,x)",
        "embeds": f'<iframe src="{url}/iframe"></iframe><object data="file:///etc/hostname">'
        f'</object><svg><image href="{url}/svg.png"/></svg>',
        "style-attr": f'<p style="background-image:url({url}/attr)">styled</p>',
        "font-face": f"@font-face {{ font-family: x; src: url({url}/font.woff) }}",
        "base-meta": f'<base href="{url}/"><meta http-equiv="refresh" content="0;url={url}/m">',
        "template": "{{ 7*7 }} {% for x in range(3) %}{{ x }}{% endfor %} ${7*7} #{7*7}",
        "entities": "&lt;escaped&gt; &amp; &#x3C;raw&#x3E; &nbsp; \"quotes\" 'single'",
        "long-word": "Supercalifragilistic" * 150 + "END",
        "16-KiB": sixteen_kib,
        "arabic": "مرحبا بالعالم هذا اختبار للنص العربي",
        "hebrew": "שלום עולם זהו מבחן של טקסט בעברית",
        "rtl-with-numbers": "الرقم ١٢٣ والعدد 456، המספר 789, סוף.",
        "mixed-direction": "English then עברית then العربية then English again",
        "cjk": "你好，世界。これは日本語のテストです。안녕하세요 세계 繁體中文測試",
        "emoji": "😀🎉👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇩🇪 ❤️ 🧪",
        "combining": "e\u0301 n\u0303 a\u0308 Z\u0335\u0321\u0322\u034e\u0343 q\u0307\u0323",
        "zero-width": "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u2060word\u200ejoiner",
        "controls": "bell\x07 esc\x1b[31mred\x1b[0m del\x7f c1\x85\x9b vt\x0b ff\x0c end",
        "separators": "line\u2028separator\u2029paragraph tab\there",
    }


# Text extraction lists the runs of a right-to-left line in visual order: numbers and
# punctuation inside RTL text are checked word by word rather than as one string.
WORDWISE = {"rtl-with-numbers"}


def shows(text: str, name: str, body: str) -> bool:
    """Whether extracted ``text`` (already ``visible_form``) shows hostile ``body``."""
    if name in WORDWISE:
        return all(visible_form(word.strip("،,.")) in text for word in body.split())
    return visible_form(body) in text


_INVISIBLE = dict.fromkeys(
    [*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070), 0xFEFF, 0xFE0F]
)


def visible_form(text: str) -> str:
    """What a reader can check in extracted text: NFC, no invisible format characters, control
    characters as the template shows them (Control Pictures, U+FFFD), no whitespace at all
    (lines wrap anywhere)."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        code = ord(ch)
        if code < 0x20 and ch not in "\t\n\r":
            ch = chr(0x2400 + code)
        elif code == 0x7F:
            ch = "\u2421"
        elif 0x80 <= code < 0xA0:
            ch = "\ufffd"
        if code not in _INVISIBLE and not ch.isspace():
            out.append(ch)
    return "".join(out)


def body_text(pdf: bytes) -> str:
    """The text inside the page margins of an A4 page (running headers and footers cropped)."""
    assert shutil.which("pdftotext"), "poppler-utils is needed (scripts/system-deps.sh)"
    crop = ["-x", "0", "-y", "57", "-W", "595", "-H", "733"]
    out = subprocess.run(
        ["pdftotext", *crop, "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout
    return out.decode("utf-8").replace("\f", "\n")  # page breaks are not content


_HEX = re.compile(rb"<([0-9A-Fa-f]+)>")


def _glyphs_in_to_unicode(cmap: bytes) -> set[int]:
    gids: set[int] = set()
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", cmap, re.S):
        for line in block.splitlines():
            if codes := _HEX.findall(line):
                gids.add(int(codes[0], 16))
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", cmap, re.S):
        for line in block.splitlines():
            if len(codes := _HEX.findall(line)) >= 2:
                gids.update(range(int(codes[0], 16), int(codes[1], 16) + 1))
    return gids


def missing_glyphs(pdf: bytes) -> dict[str, list[int]]:
    """Glyphs drawn that their embedded font does not have (what prints as a .notdef box),
    by font. WeasyPrint subsets with retained glyph ids and numbers a missing glyph past the
    font's last one, so every glyph the ToUnicode map lists must exist in the font program."""
    reader = PdfReader(io.BytesIO(pdf))
    fonts = {}
    for page in reader.pages:
        resources = page.get("/Resources")
        for ref in ((resources.get_object().get("/Font") or {}) if resources else {}).values():
            fonts[str(ref.get_object()["/BaseFont"])] = ref.get_object()
    bad: dict[str, list[int]] = {}
    for name, font in fonts.items():
        if font["/Subtype"] != "/Type0":
            continue
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
        key = next(k for k in ("/FontFile2", "/FontFile3", "/FontFile") if k in descriptor)
        program = TTFont(io.BytesIO(descriptor[key].get_object().get_data()))
        count = program["maxp"].numGlyphs
        used = _glyphs_in_to_unicode(font["/ToUnicode"].get_object().get_data())
        if wrong := sorted(g for g in used if g == 0 or g >= count):
            bad[name] = wrong
    return bad


def font_table(pdf: bytes) -> list[dict[str, str]]:
    """``pdffonts``' view: name, type, and whether each font is embedded and has ToUnicode."""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        out = subprocess.run(["pdffonts", f.name], capture_output=True, check=True).stdout
    rows = []
    for line in out.decode().splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 6:
            rows.append({"name": parts[0], "emb": parts[-5], "uni": parts[-3]})
    return rows
