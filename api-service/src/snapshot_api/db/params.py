"""Typed records for SQL parameters: a frozen dataclass whose fields are a statement's
parameters, in ``$n`` order. ``slots`` names each field's ``$n`` for the statement's text,
``args`` gives the values in the same order: the one place that maps fields to positions."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


class Slots:
    """``slots.name`` is the ``$n`` of field ``name`` of a record type (``slots(...)``)."""

    def __init__(self, positions: dict[str, str]) -> None:
        self._positions = positions  # no other attribute: any name may be a field's

    def __getattr__(self, name: str) -> str:
        try:
            return self._positions[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}") from None


def slots(record_type: type[Any], first: int = 1) -> Slots:
    names = [f.name for f in fields(record_type)]
    return Slots({n: f"${first + i}" for i, n in enumerate(names)})


def following(record_type: type[Any], first: int = 1) -> int:
    """The first position after the record's, for parameters that follow it."""
    return first + len(fields(record_type))


def args(record: Any) -> tuple[Any, ...]:
    """The record's values in its fields' order (the order of ``slots``)."""
    return tuple(getattr(record, f.name) for f in fields(record))
