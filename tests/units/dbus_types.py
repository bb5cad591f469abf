"""A checker of plain Python values against D-Bus signatures, for tests of units/.

hostd/ hands these values to sd-bus; a value of the wrong shape there is a runtime error in
the daemon, so the tests check every property build_unit and the directive table produce.
"""

from __future__ import annotations

_BASIC = {
    "b": lambda v: isinstance(v, bool),
    "s": lambda v: isinstance(v, str) and "\x00" not in v,
    "y": lambda v: type(v) is int and 0 <= v < 2**8,
    "u": lambda v: type(v) is int and 0 <= v < 2**32,
    "i": lambda v: type(v) is int and -(2**31) <= v < 2**31,
    "t": lambda v: type(v) is int and 0 <= v < 2**64,
}


def _split(signature: str) -> tuple[str, str]:
    """The first complete type of signature, and the rest."""
    head = signature[0]
    if head == "a":
        element, rest = _split(signature[1:])
        return "a" + element, rest
    if head == "(":
        inner, depth = 1, 1
        while depth:
            depth += {"(": 1, ")": -1}.get(signature[inner], 0)
            inner += 1
        return signature[:inner], signature[inner:]
    return head, signature[1:]


def _members(signature: str) -> list[str]:
    members = []
    while signature:
        first, signature = _split(signature)
        members.append(first)
    return members


def conforms(signature: str, value: object) -> bool:
    """True if value is what hostd/ may pass for that single complete D-Bus type."""
    if signature == "ay":
        return isinstance(value, bytes)
    if signature.startswith("a"):
        return isinstance(value, list) and all(conforms(signature[1:], item) for item in value)
    if signature.startswith("("):
        members = _members(signature[1:-1])
        return (
            isinstance(value, tuple)
            and len(value) == len(members)
            and all(conforms(sig, item) for sig, item in zip(members, value, strict=True))
        )
    return _BASIC[signature](value)
