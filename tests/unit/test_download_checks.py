"""Downloads open a stored PDF safely, verify it once per file identity (size, SHA-256 and the
content hash it carries) on the descriptor they serve from, and record each download as a use."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from snapshot_api.services.artifacts import Expected, Refused, VerifiedFiles, open_nofollow
from snapshot_api.services.downloads import UseMarks
from snapshot_shared import store
from snapshot_shared.store import last_use, use_mark
from support.pdf import fake_pdf

CONTENT = hashlib.sha256(b"room A").hexdigest()
PDF = fake_pdf(CONTENT, filler=b"y" * 4000)
KEY = hashlib.sha256(b"key").hexdigest()
EXPECTED = Expected(KEY, len(PDF), hashlib.sha256(PDF).hexdigest(), CONTENT)


def written(root: Path, data: bytes = PDF, key: str = KEY) -> Path:
    path = store.pdf_path(root, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    old = time.time() - 3600
    os.utime(path, (old, old))  # written an hour ago, as far as mtime goes
    return path


def check(files: VerifiedFiles, root: Path, expected: Expected = EXPECTED) -> str | None:
    """``None`` when the stored file passes, else the refusal reason."""
    try:
        with open_nofollow(root, expected.key) as f:
            files.check(f, expected)
    except Refused as exc:
        return exc.reason
    return None


def test_ranges_of_an_unchanged_file_hash_it_once(tmp_path: Path) -> None:
    files = VerifiedFiles(settle_seconds=0)
    written(tmp_path)

    assert [check(files, tmp_path) for _ in range(5)] == [None] * 5

    assert files.hashed == 1


def test_a_file_changed_in_place_after_verification_is_hashed_again_and_refused(
    tmp_path: Path,
) -> None:
    files, path = VerifiedFiles(settle_seconds=0), written(tmp_path)
    assert check(files, tmp_path) is None
    with path.open("r+b") as f:  # same size, one byte flipped
        f.seek(100)
        f.write(b"z")

    assert check(files, tmp_path) == "sha256"
    assert files.hashed == 2
    assert check(files, tmp_path) == "sha256"  # and is never remembered as intact


def test_a_file_replaced_by_rename_is_hashed_again(tmp_path: Path) -> None:
    files, path = VerifiedFiles(settle_seconds=0), written(tmp_path)
    assert check(files, tmp_path) is None
    other = tmp_path / "b.pdf"
    other.write_bytes(PDF.replace(b"y", b"w"))
    os.utime(other, (path.stat().st_mtime, path.stat().st_mtime))
    other.replace(path)

    assert check(files, tmp_path) == "sha256"
    assert files.hashed == 2


def test_another_contents_pdf_with_the_right_digest_is_refused(tmp_path: Path) -> None:
    """What a forged event names: a genuine PDF (size and digest match what the event says),
    but of another snapshot's content."""
    other = fake_pdf(hashlib.sha256(b"room B").hexdigest(), filler=b"y" * 4000)
    written(tmp_path, other)
    claimed = Expected(KEY, len(other), hashlib.sha256(other).hexdigest(), CONTENT)

    assert check(VerifiedFiles(settle_seconds=0), tmp_path, claimed) == "content_hash"


def test_a_missing_or_resized_file_is_refused(tmp_path: Path) -> None:
    files = VerifiedFiles(settle_seconds=0)
    assert check(files, tmp_path) == "missing"
    assert check(files, tmp_path / "no-store-yet") == "missing"
    written(tmp_path)
    assert check(files, tmp_path, Expected(KEY, len(PDF) + 1, EXPECTED.sha256, CONTENT)) == "size"
    assert files.hashed == 0


def test_a_file_changed_within_the_settle_time_is_not_remembered(tmp_path: Path) -> None:
    files = VerifiedFiles(settle_seconds=3600)  # ctime is now
    written(tmp_path)

    assert check(files, tmp_path) is None and check(files, tmp_path) is None

    assert files.hashed == 2


def test_symlinks_anywhere_below_the_root_are_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "store", tmp_path / "outside"
    copy = written(outside)  # an intact copy, out of the store
    path = store.pdf_path(root, KEY)
    path.parent.mkdir(parents=True)
    path.symlink_to(copy)
    files = VerifiedFiles(settle_seconds=0)

    assert check(files, root) == "symlink"
    path.unlink()
    path.parent.rmdir()
    path.parent.symlink_to(copy.parent)  # the shard directory a link instead
    assert check(files, root) == "symlink"
    assert files.hashed == 0


def test_a_fifo_or_a_directory_at_the_path_is_refused_without_blocking(tmp_path: Path) -> None:
    path = store.pdf_path(tmp_path, KEY)
    path.parent.mkdir(parents=True)
    os.mkfifo(path)  # a plain open would wait for a writer forever
    assert check(VerifiedFiles(), tmp_path) == "not_regular"
    path.unlink()
    path.mkdir()
    assert check(VerifiedFiles(), tmp_path) == "not_regular"


def test_the_open_file_stays_the_verified_one_when_the_path_is_swapped(tmp_path: Path) -> None:
    written(tmp_path)
    files = VerifiedFiles(settle_seconds=0)
    with open_nofollow(tmp_path, KEY) as f:
        files.check(f, EXPECTED)
        forged = tmp_path / "forged.pdf"
        forged.write_bytes(b"%PDF-1.7 forged" + b"!" * (len(PDF) - 15))
        forged.replace(store.pdf_path(tmp_path, KEY))
        f.seek(0)
        assert f.read() == PDF
    assert check(files, tmp_path) == "content_hash"


def test_a_configured_root_that_is_a_symlink_is_fine(tmp_path: Path) -> None:
    written(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert check(VerifiedFiles(), tmp_path / "link") is None


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
