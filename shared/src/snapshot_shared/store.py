"""Layout of the content-addressed PDF store on the shared volume (DESIGN §6).

The renderer writes it; the API only reads it. Keys are SHA-256 hex digests, sharded as
``ab/cd/<key>.pdf`` with ``<key>.json`` metadata beside each PDF.

Use marks: the store evicts the least recently *used* entries, and a download is a use, but
the API mounts the store read-only, and ``atime`` is often off (``noatime``). So every reader,
the API included, touches a small empty *use mark* ``<uses>/ab/<key>`` in a separate, writable
directory (``store_uses_dir``; by default ``<store>/.uses``); an entry's last use is the newer of
its PDF's mtime (when it was written) and its mark's mtime. Marks never change a PDF's own
metadata, so the API's "verified once" memory of a PDF stays valid across uses.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_KEY = re.compile(r"^[0-9a-f]{64}$")


def check_key(key: str) -> str:
    """Return ``key`` if it is a SHA-256 hex digest; refuse anything that could escape the store."""
    if not _KEY.match(key):
        raise ValueError("store keys are SHA-256 hex digests")
    return key


def shard_dir(root: Path, key: str) -> Path:
    check_key(key)
    return root / key[:2] / key[2:4]


def pdf_path(root: Path, key: str) -> Path:
    return shard_dir(root, key) / f"{key}.pdf"


def meta_path(root: Path, key: str) -> Path:
    return shard_dir(root, key) / f"{key}.json"


def uses_root(store_root: Path, configured: Path | None = None) -> Path:
    """Where the use marks live: ``configured``, or ``.uses`` inside the store."""
    return configured if configured is not None else store_root / ".uses"


def use_mark(uses: Path, key: str) -> Path:
    return uses / check_key(key)[:2] / key


def touch_use(uses: Path, key: str) -> None:
    """Record a use of ``key`` now (blocking: two or three syscalls)."""
    mark = use_mark(uses, key)
    try:
        os.utime(mark)
    except FileNotFoundError:
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.touch()


def last_use(uses: Path, key: str) -> float | None:
    """The mtime of ``key``'s use mark, or ``None`` if it was never used since written."""
    try:
        return use_mark(uses, key).stat().st_mtime
    except FileNotFoundError:
        return None
