"""Small text helpers shared by the validators (pure layer; no I/O)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

from hostd.units.errors import InvalidInput

__all__ = ["has_unsafe_char", "prefixed", "show"]

# Error messages quote the offending value, but a hostile value must not flood a log line.
SHOWN_CHARS = 64


def show(value: object) -> str:
    """The repr of a value for an error message, cut to SHOWN_CHARS characters."""
    text = repr(value)
    if len(text) > SHOWN_CHARS:
        return text[: SHOWN_CHARS - 3] + "..."
    return text


def has_unsafe_char(text: str) -> bool:
    """True if text holds a control, format, surrogate or unassigned character, or a line
    or paragraph separator: characters that can hide text from a reader or split a record."""
    return any(unicodedata.category(char)[0] == "C" or char in "\u2028\u2029" for char in text)


@contextmanager
def prefixed(label: str) -> Iterator[None]:
    """Re-raise an InvalidInput from the block as the same class with "label: " in front, so
    a message says which directive or option it is about."""
    try:
        yield
    except InvalidInput as exc:
        raise type(exc)(f"{label}: {exc.message}") from exc
