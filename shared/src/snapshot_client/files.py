"""Downloads on disk: the name a ``Content-Disposition`` offers, where a download goes, and
writing it so that a failed download leaves no partial file."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO
from urllib.parse import unquote

_FILENAME_STAR = re.compile(r"filename\*\s*=\s*UTF-8''([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename\s*=\s*"([^"]*)"', re.IGNORECASE)


def filename_from(disposition: str | None) -> str | None:
    """The file name a ``Content-Disposition`` header offers, reduced to a safe base name."""
    if not disposition:
        return None
    match = _FILENAME_STAR.search(disposition) or _FILENAME.search(disposition)
    if not match:
        return None
    name = Path(unquote(match.group(1)).replace("\\", "/")).name.strip()
    return name if name not in ("", ".", "..") else None


def target_path(dest: str | os.PathLike[str] | None, offered: str) -> Path:
    if dest is None:
        return Path(offered)
    path = Path(dest)
    if path.is_dir() or str(dest).endswith(("/", os.sep)):  # "out/" names a folder to make
        return path / offered
    return path


def copy_stream(
    chunks: Iterator[bytes],
    out: IO[bytes],
    total: int | None,
    on_bytes: Callable[[int, int | None], None] | None,
) -> int:
    written = 0
    for chunk in chunks:
        out.write(chunk)
        written += len(chunk)
        if on_bytes:
            on_bytes(written, total)
    out.flush()
    return written


def write_atomically(
    chunks: Iterator[bytes],
    target: Path,
    total: int | None,
    on_bytes: Callable[[int, int | None], None] | None,
) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            written = copy_stream(chunks, out, total, on_bytes)
        os.chmod(temp, 0o666 & ~_umask())  # as an ordinary new file, not mkstemp's 0600
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return written


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
