"""Layout of the content-addressed PDF store on the shared volume (DESIGN §6).

The renderer writes it; the API only reads it. Keys are SHA-256 hex digests, sharded as
``ab/cd/<key>.pdf`` with ``<key>.json`` metadata beside each PDF.
"""

from __future__ import annotations

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
