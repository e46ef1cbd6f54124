"""The text the API accepts: valid Unicode without NUL (PostgreSQL stores neither lone
surrogates nor NUL), and, in one-line fields (names, titles, ids), no control characters."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def text_problem(value: str, one_line: bool = False) -> str | None:
    """Why ``value`` is not acceptable text, or ``None`` when it is."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    if one_line and _CONTROL.search(value):
        return "must be one line without control characters"
    return None


def check_text(value: str) -> str:
    """Pydantic validator: valid Unicode, no NUL."""
    if problem := text_problem(value):
        raise ValueError(problem)
    return value


def check_line(value: str) -> str:
    """Pydantic validator: valid Unicode, one line, no control characters."""
    if problem := text_problem(value, one_line=True):
        raise ValueError(problem)
    return value
