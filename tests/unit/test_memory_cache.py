"""The in-process LRU is bounded in bytes and evicts the least recently used entry first."""

from __future__ import annotations

import hashlib

from snapshot_renderer.cache.memory import CachedPdf, MemoryCache


def entry(size: int, fill: bytes = b"x") -> CachedPdf:
    pdf = (fill * size)[:size]
    return CachedPdf(pdf=pdf, pages=1, pdf_sha256=hashlib.sha256(pdf).hexdigest())


def test_byte_bound_evicts_oldest_first() -> None:
    cache = MemoryCache(max_bytes=100)
    for key in ("a", "b", "c"):
        assert cache.put(key, entry(30))
    assert cache.bytes_used == 90 and len(cache) == 3

    cache.put("d", entry(30))  # 120 > 100: "a" (oldest) goes

    assert "a" not in cache
    assert [k for k in ("b", "c", "d") if k in cache] == ["b", "c", "d"]
    assert cache.bytes_used == 90


def test_get_refreshes_recency() -> None:
    cache = MemoryCache(max_bytes=100)
    for key in ("a", "b", "c"):
        cache.put(key, entry(30))

    assert cache.get("a") is not None  # "a" is now the most recent; "b" is the oldest
    cache.put("d", entry(30))

    assert "b" not in cache
    assert "a" in cache and "c" in cache and "d" in cache


def test_one_big_entry_evicts_several() -> None:
    cache = MemoryCache(max_bytes=100)
    for key in ("a", "b", "c"):
        cache.put(key, entry(30))

    cache.put("big", entry(70))

    assert len(cache) == 2 and "c" in cache and "big" in cache
    assert cache.bytes_used == 100


def test_entry_larger_than_bound_is_not_stored() -> None:
    cache = MemoryCache(max_bytes=100)
    cache.put("a", entry(50))

    assert cache.put("huge", entry(101)) is False

    assert "huge" not in cache and "a" in cache
    assert cache.bytes_used == 50


def test_replacing_a_key_counts_its_bytes_once() -> None:
    cache = MemoryCache(max_bytes=100)
    cache.put("a", entry(40))
    cache.put("a", entry(60, b"y"))

    assert len(cache) == 1 and cache.bytes_used == 60
    got = cache.get("a")
    assert got is not None and got.pdf == b"y" * 60


def test_miss_and_discard() -> None:
    cache = MemoryCache(max_bytes=100)
    assert cache.get("nope") is None
    cache.put("a", entry(10))
    cache.discard("a")
    assert len(cache) == 0 and cache.bytes_used == 0
