"""Reading the fields of a JSON object back into typed values: the one set of readers the wire
contract (hostd.api.wire) and the ground floor's own values (hostd.units.history) share.

Each raises TypeError for a value of the wrong kind and KeyError for a missing one; the caller
turns either into its own error (a bad request, a bad answer). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "bool_field",
    "float_field",
    "int_field",
    "json_object",
    "list_field",
    "optional_float",
    "optional_int",
    "optional_str",
    "str_field",
    "strings_field",
]


def json_object(data: object) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise TypeError(f"expected an object, not {type(data).__name__}")
    return data


def int_field(data: Mapping[str, Any], name: str) -> int:
    value = data[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name}: expected an integer, not {type(value).__name__}")
    return value


def float_field(data: Mapping[str, Any], name: str) -> float:
    value = data[name]
    # JSON has one kind of number: 2 and 2.0 are the same amount of cores or seconds.
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{name}: expected a number, not {type(value).__name__}")
    return float(value)


def str_field(data: Mapping[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string, not {type(value).__name__}")
    return value


def bool_field(data: Mapping[str, Any], name: str) -> bool:
    value = data[name]
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected true or false, not {type(value).__name__}")
    return value


def list_field(data: Mapping[str, Any], name: str) -> list[Any]:
    value = data[name]
    if not isinstance(value, list):
        raise TypeError(f"{name}: expected a list, not {type(value).__name__}")
    return value


def strings_field(data: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = data[name]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"{name}: expected a list of strings")
    return tuple(value)


def optional_int(data: Mapping[str, Any], name: str) -> int | None:
    return None if data[name] is None else int_field(data, name)


def optional_float(data: Mapping[str, Any], name: str) -> float | None:
    return None if data[name] is None else float_field(data, name)


def optional_str(data: Mapping[str, Any], name: str) -> str | None:
    return None if data[name] is None else str_field(data, name)
