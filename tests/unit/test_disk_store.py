"""The disk store: atomic writes, verified reads, corruption handling, byte-bounded eviction."""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from snapshot_renderer.cache.disk import DiskStore
from snapshot_renderer.cache.memory import CachedPdf
from snapshot_shared.store import last_use, meta_path, pdf_path, touch_use, use_mark, uses_root


def key_of(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def entry(size: int = 1000, seed: str = "x") -> CachedPdf:
    pdf = b"%PDF-1.7\n" + hashlib.sha256(seed.encode()).digest() * (size // 32 + 1)
    pdf = pdf[:size]
    return CachedPdf(pdf=pdf, pages=3, pdf_sha256=hashlib.sha256(pdf).hexdigest())


def all_files(root: Path) -> list[Path]:
    """Every file of the entries' shard directories (temp files included); the store's own
    bookkeeping at the top (``.ledger``, ``.uses/``, ``.locks/``) is not an entry."""
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0][0] != "."
    )


@pytest.fixture
def store(tmp_path: Path) -> DiskStore:
    disk = DiskStore(tmp_path / "store", max_bytes=10_000_000)
    disk.scan()
    return disk


async def test_write_is_complete_and_leaves_no_temp_files(store: DiskStore) -> None:
    key, item = key_of("a"), entry(5000)

    await store.write(key, item)

    pdf_file, meta_file = pdf_path(store.root, key), meta_path(store.root, key)
    assert all_files(store.root) == sorted([pdf_file, meta_file])
    assert pdf_file.parent == store.root / key[:2] / key[2:4]
    assert pdf_file.read_bytes() == item.pdf
    meta = json.loads(meta_file.read_bytes())
    assert meta["pdf_sha256"] == item.pdf_sha256
    assert meta["bytes"] == 5000 and meta["pages"] == 3
    assert meta["created_at"].endswith("Z")
    assert oct(pdf_file.stat().st_mode & 0o777) == "0o644"
    assert store.bytes_used == 5000 + meta_file.stat().st_size


async def test_read_returns_what_was_written(store: DiskStore) -> None:
    key, item = key_of("a"), entry()
    await store.write(key, item)

    got = await store.read(key)

    assert got == item
    assert await store.exists(key)
    assert await store.read(key_of("missing")) is None


async def test_a_symlink_at_an_entry_is_not_followed_but_dropped(
    store: DiskStore, tmp_path: Path
) -> None:
    """An intact copy linked from outside the store: read through the link, it would pass
    every check, but the API refuses to serve a link, so the entry must be rewritten."""
    key, item = key_of("a"), entry()
    await store.write(key, item)
    outside = tmp_path / "outside.pdf"
    pdf_file = pdf_path(store.root, key)
    pdf_file.replace(outside)
    pdf_file.symlink_to(outside)

    assert await store.read(key) is None
    assert not pdf_file.is_symlink() and not pdf_file.exists()
    assert outside.read_bytes() == item.pdf  # the link's target is left alone


async def test_flipped_byte_is_detected_and_the_entry_dropped(store: DiskStore) -> None:
    key, item = key_of("a"), entry()
    await store.write(key, item)
    pdf_file = pdf_path(store.root, key)
    data = bytearray(pdf_file.read_bytes())
    data[500] ^= 0x01
    pdf_file.write_bytes(bytes(data))

    assert await store.read(key) is None

    assert not pdf_file.exists()
    assert not meta_path(store.root, key).exists()
    assert not await store.exists(key)
    assert store.bytes_used == 0


@pytest.mark.parametrize("meta", [None, b"{not json", b'{"pages": 3}'])
async def test_missing_or_invalid_metadata_drops_the_entry(
    store: DiskStore, meta: bytes | None
) -> None:
    key = key_of("a")
    await store.write(key, entry())
    meta_file = meta_path(store.root, key)
    if meta is None:
        meta_file.unlink()
    else:
        meta_file.write_bytes(meta)

    assert await store.read(key) is None
    assert not pdf_path(store.root, key).exists()


async def test_eviction_drops_least_recently_used_until_under_the_bound(tmp_path: Path) -> None:
    store = DiskStore(tmp_path, max_bytes=10_000)
    store.scan()
    keys = [key_of(str(i)) for i in range(4)]
    now = time.time()
    for age, key in zip((400, 300, 200, 100), keys, strict=True):
        await store.write(key, entry(2000, key))
        os.utime(pdf_path(tmp_path, key), (now - age, now - age))
    assert await store.read(keys[0]) is not None  # touched: now the most recently used

    await store.write(key_of("new"), entry(2000, "new"))  # 5 x ~2.15 kB > 10 kB

    present = [k for k in keys if await store.exists(k)]
    assert present == [keys[0], keys[2], keys[3]]  # only the least recently used went
    assert await store.exists(key_of("new"))
    assert store.bytes_used <= 9_000  # evicted down to 90 % of the bound
    assert store.bytes_used == sum(p.stat().st_size for p in all_files(tmp_path))


async def test_open_counts_existing_bytes_and_removes_stale_temp_files(tmp_path: Path) -> None:
    first = DiskStore(tmp_path, max_bytes=1_000_000)
    first.scan()
    await first.write(key_of("a"), entry(3000))
    shard = pdf_path(tmp_path, key_of("a")).parent
    stale = shard / ".leftover.pdf.abc.tmp"
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = shard / ".inprogress.pdf.def.tmp"
    fresh.write_bytes(b"being written")

    second = DiskStore(tmp_path, max_bytes=1_000_000)
    await second.open()

    assert second.bytes_used == first.bytes_used
    assert not stale.exists() and fresh.exists()


def entry_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in all_files(root))


async def test_the_bound_holds_for_the_volume_shared_by_replicas(tmp_path: Path) -> None:
    replicas = [DiskStore(tmp_path, max_bytes=10_000) for _ in range(3)]
    for replica in replicas:
        await replica.open()

    for i in range(9):  # 9 x ~2.15 kB written round-robin: each replica alone stays under
        await replicas[i % 3].write(key_of(str(i)), entry(2000, str(i)))
        assert entry_bytes(tmp_path) <= 10_000

    assert replicas[8 % 3].bytes_used == entry_bytes(tmp_path)
    assert await replicas[0].exists(key_of("8"))  # the newest stays


async def test_concurrent_writers_keep_the_ledger_exact(tmp_path: Path) -> None:
    first, second = DiskStore(tmp_path, 10_000_000), DiskStore(tmp_path, 10_000_000)
    first.scan()

    def write(i: int) -> None:
        (first if i % 2 else second).write_sync(key_of(str(i % 12)), entry(1000 + i, str(i)))

    with ThreadPoolExecutor(8) as threads:
        list(threads.map(write, range(48)))  # rewrites of the same keys included

    assert first.scan() == entry_bytes(tmp_path)
    assert second.evict_sync() == 0 and second.bytes_used == entry_bytes(tmp_path)


async def test_a_use_recorded_by_the_api_counts_for_eviction(tmp_path: Path) -> None:
    store = DiskStore(tmp_path, max_bytes=10_000)
    store.scan()
    keys = [key_of(str(i)) for i in range(4)]
    now = time.time()
    for age, key in zip((400, 300, 200, 100), keys, strict=True):
        await store.write(key, entry(2000, key))
        os.utime(pdf_path(tmp_path, key), (now - age, now - age))
    touch_use(uses_root(tmp_path), keys[0])  # what a download does (the API never reads here)

    await store.write(key_of("new"), entry(2000, "new"))

    present = [k for k in keys if await store.exists(k)]
    assert present == [keys[0], keys[2], keys[3]]
    assert not use_mark(uses_root(tmp_path), keys[1]).exists()  # evicted with its entry


async def test_a_renderer_hit_records_a_use_without_touching_the_pdf(tmp_path: Path) -> None:
    store = DiskStore(tmp_path, max_bytes=1_000_000, uses=tmp_path / "uses")
    store.scan()
    key = key_of("a")
    await store.write(key, entry())
    before = pdf_path(tmp_path, key).stat()

    assert await store.read(key) is not None

    assert last_use(tmp_path / "uses", key) is not None
    after = pdf_path(tmp_path, key).stat()
    assert (after.st_mtime_ns, after.st_ctime_ns) == (before.st_mtime_ns, before.st_ctime_ns)
