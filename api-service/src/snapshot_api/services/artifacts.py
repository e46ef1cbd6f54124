"""Stored PDFs bound to their content: opened safely, verified, and served from the same fd.

A ``completed`` status event only names a store key; anyone who can publish on the broker can
name another room's key. So a PDF counts as a snapshot's artifact only if the file at that key
has the size and SHA-256 the event reported *and* carries the snapshot's content hash in its
PDF identifier (``snapshot_shared.pdf_identity``; the renderer writes it). The status consumer
checks this before it lets an event complete a task, and downloads check it again on the very
file descriptor they then stream, so neither a forged event nor a file swapped or planted in
the store later can make a room serve another room's PDF.

Opening: each path component below the store root is opened with ``O_NOFOLLOW`` relative to
its parent (a symlink anywhere under the root is refused, not only as the last component),
with ``O_NONBLOCK`` (a FIFO planted in the store cannot hang the open), and the result must be
a regular file by ``fstat`` on the descriptor.

Verifying costs a full SHA-256 of the file, so ``VerifiedFiles`` remembers the identities that
passed: ``(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)`` from ``fstat`` of the open
descriptor, with the expected digest and content hash. A Range request on a verified file
hashes nothing; a file replaced by rename (a new inode) or written in place (mtime and ctime
move, and user space cannot set ctime back) is hashed again. File timestamps are coarse (a
kernel tick), so a write within the same tick as the last change could go unseen: files
changed less than ``settle_seconds`` ago are hashed on every request.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path

from snapshot_shared import store
from snapshot_shared.pdf_identity import is_of, read_content_hash

from snapshot_api.metrics import ARTIFACTS_REFUSED

log = logging.getLogger(__name__)
_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC  # the configured root may be a link
_DIR_FLAGS = _ROOT_FLAGS | os.O_NOFOLLOW
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class Expected:
    """What a snapshot's artifact must be: its key, size, SHA-256 and content hash."""

    key: str
    size: int
    sha256: str
    content_hash: str


class Refused(Exception):
    """The stored file is not the expected artifact; ``reason`` is a short metric label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def open_nofollow(root: Path, key: str) -> BufferedReader:
    """Open ``key``'s PDF for reading, refusing symlinks below ``root`` and non-regular files
    (blocking). Raises ``Refused`` (``missing``, ``symlink``, ``not_regular``)."""
    parts = store.pdf_path(root, key).relative_to(root).parts
    try:
        fd = os.open(root, _ROOT_FLAGS)
    except FileNotFoundError:
        raise Refused("missing") from None
    try:
        for part in parts[:-1]:
            parent, fd = fd, os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(parent)
        parent, fd = fd, os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
        os.close(parent)
    except FileNotFoundError:
        os.close(fd)
        raise Refused("missing") from None
    except OSError as exc:  # ELOOP: a symlink; ENOTDIR: a file where a shard directory is
        os.close(fd)
        symlink = exc.errno in (errno.ELOOP, errno.ENOTDIR)
        raise Refused("symlink" if symlink else "unreadable") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Refused("not_regular")
    return os.fdopen(fd, "rb")


_Identity = tuple[int, int, int, int, int]


class VerifiedFiles:
    """Which open PDFs were hashed and found to be the expected artifact, by file identity."""

    def __init__(self, capacity: int = 4096, settle_seconds: float = 2.0) -> None:
        self.capacity = capacity
        self.settle_seconds = settle_seconds
        self.hashed = 0  # files hashed so far (for tests and curiosity)
        self._seen: OrderedDict[tuple[_Identity, str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, file: BufferedReader, expected: Expected) -> None:
        """Raise ``Refused`` unless the open ``file`` is exactly ``expected`` (blocking).
        Leaves the file offset anywhere: read with explicit offsets or seek first."""
        st = os.fstat(file.fileno())
        if st.st_size != expected.size:
            raise Refused("size")
        ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        entry = (ident, expected.sha256, expected.content_hash)
        with self._lock:
            if entry in self._seen:
                self._seen.move_to_end(entry)
                return
            self.hashed += 1
        if not is_of(read_content_hash(file.fileno(), st.st_size), expected.content_hash):
            raise Refused("content_hash")
        file.seek(0)
        if hashlib.file_digest(file, "sha256").hexdigest() != expected.sha256:
            raise Refused("sha256")
        if time.time() - st.st_ctime_ns / 1e9 > self.settle_seconds:
            with self._lock:
                self._seen[entry] = None
                while len(self._seen) > self.capacity:
                    self._seen.popitem(last=False)


# Per process (each uvicorn worker keeps its own): plain memory, no client or connection. The
# status consumer and the downloads share it, so a PDF checked at its event is not hashed again
# at its first download.
VERIFIED = VerifiedFiles()


def open_verified(
    root: Path, expected: Expected, verified: VerifiedFiles, stage: str
) -> BufferedReader:
    """The expected artifact, open and verified, positioned at 0 (blocking); the caller owns
    and closes it. A refusal is counted (``stage``: ``event`` or ``download``) and raised."""
    try:
        file = open_nofollow(root, expected.key)
        try:
            verified.check(file, expected)
            file.seek(0)
        except BaseException:
            file.close()
            raise
    except Refused as exc:
        ARTIFACTS_REFUSED.labels(stage=stage, reason=exc.reason).inc()
        raise
    return file


def is_artifact(root: Path, expected: Expected, verified: VerifiedFiles) -> str | None:
    """``None`` if the store holds ``expected`` now, else the refusal reason (blocking)."""
    try:
        open_verified(root, expected, verified, "event").close()
    except Refused as exc:
        return exc.reason
    return None
