"""Input limits both services enforce: the API refuses a request over them (413/422), the
renderer refuses a job over them (``bad_job``), so the API never accepts what the renderer
cannot take.

Sizes were measured with the renderer's ``render_pdf`` on the 2-core development VM: a page
holds about 5,600 bytes of running text or 55 line breaks (so one line break lays out like
~100 bytes of text), a message costs about as much as 400 bytes of text (its header and
spacing), and so does a color emoji (in time, not pages). A snapshot's *weight* adds these
up; README "Configuration" has the figures.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# One-line text fields (characters).
ROOM_NAME_CHARS = 200
DISPLAY_NAME_CHARS = 100
USER_ID_CHARS = 128
# A member or author without a display name is shown by user id: names on the wire are longer.
WIRE_NAME_CHARS = max(DISPLAY_NAME_CHARS, USER_ID_CHARS)
TITLE_CHARS = 200
LOCALE_CHARS = 35  # BCP 47 tags in practice stay under 35 (RFC 5646 §4.4.1)
TIMEZONE_CHARS = 64  # the longest IANA name has 32
KIND_CHARS = 16
TEMPLATE_CHARS = 64
REQUEST_ID_CHARS = 128

# Message bodies.
MESSAGE_BYTES = 16 * 1024  # UTF-8 bytes of one body
MESSAGE_LINE_BREAKS = 500  # ~9 pages of empty lines, 0.2 s of layout
# What a snapshot's messages may weigh: bytes + LINE_BREAK_WEIGHT per line break +
# EMOJI_WEIGHT per emoji + MESSAGE_WEIGHT per message. With pieces (DESIGN §6, issue 11) a
# snapshot renders one piece per chunk of the room's timeline (snapshot_shared.chunking: at
# most 50 messages or 48,000 weight, or one heavier message), so the render budgets (time,
# memory) hold per piece, not per document. Measured with the renderer's render_pdf on one
# chunk's messages alone (the 2-core development VM, best of 3, other jobs running): 50
# messages of 100 bytes (weight 25,000) 3 pages in 0.14 s; a chunk at the budget, 2 x 16 KiB
# + 14,000 bytes of text (47,968), 9 pages in 0.39 s; one message of 500 line breaks
# (50,900) 10 pages in 0.12 s; the heaviest piece, one message of 16 KiB of emoji
# (1,655,184), 2 pages in 10.4 s; peak RSS 83-105 MiB each. 64 MiB holds 100,000 messages of
# ~270 bytes (100,000 of 100 bytes weigh 50,000,000), ~12,000 pages of plain text at ~5,600
# weight a page.
LINE_BREAK_WEIGHT = 100
MESSAGE_WEIGHT = 400
# A glyph from the color emoji font costs 1.3-3.3 ms to lay out and write (😀: 3.3 ms, ✅:
# 1.6 ms, ❤️: 1.4 ms; plain text: ~10 us a byte): 16 KiB of emoji took 9-10 s. Characters of
# the emoji blocks, and U+FE0F (emoji presentation), weigh as much as a message.
EMOJI_WEIGHT = 400
SNAPSHOT_MESSAGES = 100_000
SNAPSHOT_WEIGHT = 64 * 2**20
# Members listed in a snapshot (all on its cover piece): a member row costs 11 ms (short
# names) to 75 ms (100-char names, 110-char ids that wrap); 500 of the latter took 38 s (39
# pages, 123 MiB), within the default 120 s budget of one piece.
SNAPSHOT_MEMBERS = 500

# The same class is in migrations/0002_edges_input.sql (PostgreSQL's regexp_count).
EMOJI_CLASS = r"[\U0001F000-\U0001FAFF\u2300-\u23FF\u2600-\u27BF\u2B00-\u2BFF\uFE0F]"
_EMOJI = re.compile(EMOJI_CLASS)
# \r\n, \n and \r each end a line (HTML normalizes the three to one).
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
# C0 and C1 controls other than tab and the line breaks, and the Unicode line/paragraph
# separators, which would bypass the line-break count.
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
BODY_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]*$"


def line_breaks(body: str) -> int:
    """How many line breaks ``body`` holds (\\r\\n counts once)."""
    return len(_LINE_BREAK.findall(body))


def body_problem(body: str) -> str | None:
    """Why a message body is over the per-message limits or holds refused characters."""
    if _BODY_CONTROL.search(body):
        return "must not contain control characters (other than tab, CR, LF) nor U+2028/U+2029"
    if len(body.encode("utf-8", "surrogatepass")) > MESSAGE_BYTES:
        return f"is over {MESSAGE_BYTES} bytes of UTF-8"
    if line_breaks(body) > MESSAGE_LINE_BREAKS:
        return f"has more than {MESSAGE_LINE_BREAKS} line breaks"
    return None


def message_weight(body: str) -> int:
    """The layout cost of one message, in bytes of running text."""
    return (
        MESSAGE_WEIGHT
        + len(body.encode("utf-8", "surrogatepass"))
        + LINE_BREAK_WEIGHT * line_breaks(body)
        + EMOJI_WEIGHT * len(_EMOJI.findall(body))
    )


@dataclass(frozen=True)
class SnapshotLimits:
    """The per-snapshot bounds (defaults: this module's constants)."""

    messages: int = SNAPSHOT_MESSAGES
    weight: int = SNAPSHOT_WEIGHT
    members: int = SNAPSHOT_MEMBERS

    def problem(self, bodies: Iterable[str], members: int) -> str | None:
        """Why a snapshot (its message bodies, its member count) is over these limits, or
        ``None``. The API checks the same in SQL (``messages.weight``) before reading bodies."""
        count = weight = 0
        for body in bodies:
            count += 1
            weight += message_weight(body)
        if count > self.messages:
            return f"{count} messages; the limit is {self.messages}"
        if weight > self.weight:
            return f"the messages weigh {weight}; the limit is {self.weight}"
        if members > self.members:
            return f"{members} members; the limit is {self.members}"
        return None

    def job_bytes(self) -> int:
        """An upper bound on the JSON bytes of any render job within these limits."""
        return (
            _ENVELOPE_BYTES
            + self.messages * _MESSAGE_FIELDS_BYTES
            + 6 * self.weight
            + self.members * _MEMBER_BYTES
        )


# Worst-case JSON bytes of a render job within the limits. Canonical JSON keeps non-ASCII as
# UTF-8 and escapes what bodies may hold now (", \\, tab, CR, LF) as two bytes; bodies stored
# before control characters were refused may still escape 6x (\u0001), so a body counts 6x
# its bytes (weight >= bytes). Other fields are bounded in characters (4 bytes, 2x escaped).
_ENVELOPE_BYTES = 4096 + 8 * (TITLE_CHARS + LOCALE_CHARS + TIMEZONE_CHARS + ROOM_NAME_CHARS)
_MESSAGE_FIELDS_BYTES = 256 + 8 * (USER_ID_CHARS + WIRE_NAME_CHARS + KIND_CHARS)
_MEMBER_BYTES = 256 + 8 * (USER_ID_CHARS + WIRE_NAME_CHARS)
