"""The test helper that checks values against D-Bus signatures, checked itself."""

from __future__ import annotations

import pytest

from tests.units.dbus_types import conforms


@pytest.mark.parametrize(
    ("signature", "value"),
    [
        ("b", True),
        ("s", "x"),
        ("t", 2**64 - 1),
        ("u", 0o077),
        ("i", -20),
        ("as", ["a", "b"]),
        ("aay", [b"A=1"]),
        ("a(ss)", [("a", "/b")]),
        ("a(ssbt)", [("/a", "/a", False, 16384)]),
        ("a(sasb)", [("/bin/x", ["/bin/x", "-v"], False)]),
    ],
)
def test_conforming_values(signature: str, value: object) -> None:
    assert conforms(signature, value)


@pytest.mark.parametrize(
    ("signature", "value"),
    [
        ("b", 1),
        ("s", "a\x00b"),
        ("t", -1),
        ("t", 2**64),
        ("t", True),
        ("u", 2**32),
        ("i", 2**31),
        ("as", ("a",)),
        ("as", [1]),
        ("aay", ["A=1"]),
        ("a(ss)", [("a",)]),
        ("a(ssbt)", [["/a", "/a", False, 0]]),
        ("a(sasb)", [("/bin/x", "/bin/x", False)]),
    ],
)
def test_nonconforming_values(signature: str, value: object) -> None:
    assert not conforms(signature, value)
