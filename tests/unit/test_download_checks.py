"""Downloads verify a stored PDF once per file identity and record each download as a use."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from snapshot_api.services.downloads import UseMarks, VerifiedFiles
from snapshot_shared.store import last_use, use_mark

PDF = b"%PDF-1.7\n" + b"y" * 4000 + b"\n%%EOF\n"
SHA = hashlib.sha256(PDF).hexdigest()
KEY = hashlib.sha256(b"key").hexdigest()


def written(tmp_path: Path, data: bytes = PDF) -> Path:
    path = tmp_path / "a.pdf"
    path.write_bytes(data)
    old = time.time() - 3600
    os.utime(path, (old, old))  # written an hour ago, as far as mtime goes
    return path


def test_ranges_of_an_unchanged_file_hash_it_once(tmp_path: Path) -> None:
    files, path = VerifiedFiles(settle_seconds=0), written(tmp_path)

    assert all(files.intact(path, len(PDF), SHA) for _ in range(5))

    assert files.hashed == 1


def test_a_file_changed_in_place_after_verification_is_hashed_again_and_refused(
    tmp_path: Path,
) -> None:
    files, path = VerifiedFiles(settle_seconds=0), written(tmp_path)
    assert files.intact(path, len(PDF), SHA)
    with path.open("r+b") as f:  # same size, one byte flipped
        f.seek(100)
        f.write(b"z")

    assert not files.intact(path, len(PDF), SHA)
    assert files.hashed == 2
    assert not files.intact(path, len(PDF), SHA)  # and is never remembered as intact


def test_a_file_replaced_by_rename_is_hashed_again(tmp_path: Path) -> None:
    files, path = VerifiedFiles(settle_seconds=0), written(tmp_path)
    assert files.intact(path, len(PDF), SHA)
    other = tmp_path / "b.pdf"
    other.write_bytes(PDF.replace(b"y", b"w"))
    os.utime(other, (path.stat().st_mtime, path.stat().st_mtime))
    other.replace(path)

    assert not files.intact(path, len(PDF), SHA)
    assert files.hashed == 2


def test_a_missing_or_resized_file_is_not_intact(tmp_path: Path) -> None:
    files = VerifiedFiles(settle_seconds=0)
    assert not files.intact(tmp_path / "none.pdf", len(PDF), SHA)
    path = written(tmp_path)
    assert not files.intact(path, len(PDF) + 1, SHA)
    assert files.hashed == 0


def test_a_file_changed_within_the_settle_time_is_not_remembered(tmp_path: Path) -> None:
    files, path = VerifiedFiles(settle_seconds=3600), written(tmp_path)  # ctime is now

    assert files.intact(path, len(PDF), SHA) and files.intact(path, len(PDF), SHA)

    assert files.hashed == 2


def test_a_download_touches_the_use_mark_at_most_once_per_interval(tmp_path: Path) -> None:
    marks = UseMarks(interval=3600)
    assert last_use(tmp_path, KEY) is None

    marks.touch(tmp_path, KEY)
    assert use_mark(tmp_path, KEY).is_file()
    os.utime(use_mark(tmp_path, KEY), (1000, 1000))
    marks.touch(tmp_path, KEY)  # within the interval: no syscall, the mark stays as it was

    assert last_use(tmp_path, KEY) == 1000
    UseMarks(interval=0).touch(tmp_path, KEY)
    assert (last_use(tmp_path, KEY) or 0) > time.time() - 3600


def test_a_read_only_use_directory_does_not_fail_the_download(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    UseMarks().touch(blocker / "uses", KEY)  # cannot create a directory under a file
