"""Typed SQL parameters (db/params.py): one place maps a record's fields to ``$n``."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from snapshot_api.db import params, snapshots, tasks


@dataclass(frozen=True)
class Pair:
    after: int  # a field name that is also an ordinary word: nothing on Slots may shadow it
    first: str


def _positions(query: str) -> set[int]:
    return {int(n) for n in re.findall(r"\$(\d+)", query)}


def test_slots_and_args_follow_the_fields() -> None:
    p = params.slots(Pair)
    assert (p.after, p.first) == ("$1", "$2")
    assert params.slots(Pair, first=5).first == "$6"
    assert params.args(Pair(7, "x")) == (7, "x")
    assert params.following(Pair) == 3


def test_create_uses_every_parameter_of_its_record_once_in_order() -> None:
    count = len(fields(snapshots.CreateParams))
    assert _positions(snapshots.CREATE) == set(range(1, count + 1))
    # the rate limit check's six parameters follow the record's
    assert _positions(snapshots.CREATE_LIMITED) == set(range(1, count + 7))


def test_apply_event_uses_every_parameter_of_its_record() -> None:
    count = len(fields(tasks.TaskEvent))
    assert _positions(tasks.APPLY_EVENT) == set(range(1, count + 1))
