"""Canonical JSON and the content hash: same content → same hash, any change → new hash."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from snapshot_shared.hashing import (
    HASH_VERSION,
    canonical_json,
    content_hash,
    content_hash_canonical,
    iso_utc,
    sha256_hex,
)

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
payloads = st.dictionaries(st.text(min_size=1, max_size=8), json_values, min_size=1, max_size=6)
OPTIONS = {"page_size": "A4", "timezone": "UTC", "title": None, "locale": "en"}


def _reversed_keys(value):
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


@given(payloads)
def test_key_order_does_not_change_the_hash(payload):
    assert content_hash(payload, OPTIONS, "snapshot") == content_hash(
        _reversed_keys(payload), OPTIONS, "snapshot"
    )


@given(payloads, st.text(min_size=1, max_size=8), json_scalars)
def test_any_change_in_content_changes_the_hash(payload, key, value):
    changed = {**payload, key: value}
    if changed == payload:
        return
    assert content_hash(changed, OPTIONS, "snapshot") != content_hash(payload, OPTIONS, "snapshot")


@given(payloads)
def test_options_and_template_are_part_of_the_hash(payload):
    base = content_hash(payload, OPTIONS, "snapshot")
    assert content_hash(payload, {**OPTIONS, "page_size": "Letter"}, "snapshot") != base
    assert content_hash(payload, {**OPTIONS, "timezone": "Europe/Berlin"}, "snapshot") != base
    assert content_hash(payload, OPTIONS, "snapshot-v2") != base


@given(payloads, st.sampled_from(["snapshot", "snapshot-v2", 'quo"te\\é']))
def test_the_hash_is_the_sha256_of_the_canonical_document(payload, template):
    """The spliced fast path hashes exactly the canonical JSON of the whole document."""
    document = {
        "hash_version": HASH_VERSION,
        "payload": payload,
        "options": OPTIONS,
        "template": template,
    }
    expected = sha256_hex(canonical_json(document))
    assert content_hash(payload, OPTIONS, template) == expected
    assert content_hash_canonical(canonical_json(payload), OPTIONS, template) == expected


def test_canonical_json_is_compact_sorted_utf8():
    assert canonical_json({"b": 1, "a": "é", "c": [1, {"z": 0, "y": None}]}) == (
        '{"a":"é","b":1,"c":[1,{"y":null,"z":0}]}'.encode()
    )


def test_timestamps_are_utc_with_z_whatever_the_zone():
    berlin = dt.timezone(dt.timedelta(hours=1))
    a = dt.datetime(2026, 11, 25, 11, 0, tzinfo=berlin)
    b = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)
    assert iso_utc(a) == iso_utc(b) == "2026-11-25T10:00:00.000000Z"
    with_micros = dt.datetime(2026, 2, 3, 4, 5, 6, 7, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert iso_utc(with_micros) == "2026-02-03T09:05:06.000007Z"
    assert canonical_json({"at": a}) == canonical_json({"at": b})


def test_naive_timestamps_and_nan_are_refused():
    with pytest.raises(ValueError):
        iso_utc(dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
