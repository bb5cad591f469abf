"""units.sizes: memory sizes, CPU amounts and time spans."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostd.units.errors import InvalidOption, InvalidSize
from hostd.units.sizes import (
    SIZE_MAX,
    cpu_quota_usec,
    parse_cpu,
    parse_percent_quota,
    parse_size,
    parse_timespan_usec,
)

FAST = settings(database=None, max_examples=300)
G = 1024**3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1),
        (2048, 2048),
        ("2048", 2048),
        ("2048B", 2048),
        ("2G", 2 * G),
        ("2g", 2 * G),
        ("2GB", 2 * G),
        ("2GiB", 2 * G),
        ("2gib", 2 * G),
        (" 2 G ", 2 * G),
        ("512M", 512 * 1024**2),
        ("1.5G", 3 * G // 2),
        ("1.3K", 1331),  # fractions of a byte are dropped
        ("64k", 65536),
        ("1T", 1024**4),
        (SIZE_MAX, SIZE_MAX),
        (str(SIZE_MAX), SIZE_MAX),
    ],
)
def test_parse_size(value: str | int, expected: int) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        0,
        "0",
        "0G",
        "0.0001K",
        -1,
        "-1",
        "-2G",
        True,
        False,
        1.5,
        math.nan,
        "nan",
        "inf",
        "",
        " ",
        "G",
        "2X",
        "2 GG",
        "2Bi",
        "1.5",
        "1e9",
        "+2G",
        "2_000",
        "\u0662G",  # an Arabic-Indic digit
        SIZE_MAX + 1,
        "8E",
        "9" * 5000,
        None,
        [2048],
    ],
)
def test_parse_size_refuses(value: object) -> None:
    with pytest.raises(InvalidSize) as caught:
        parse_size(value)
    assert repr(value)[:40] in caught.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (1.0, 1.0), (0.5, 0.5), ("2", 2.0), (" 1.5 ", 1.5), (0.01, 0.01), (1024, 1024.0)],
)
def test_parse_cpu(value: float | str, expected: float) -> None:
    assert parse_cpu(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        0,
        0.0,
        0.001,
        -1,
        1025,
        1024.5,
        10**400,
        math.nan,
        math.inf,
        -math.inf,
        True,
        "nan",
        "inf",
        "1e3",
        "1_0",
        "",
        "one",
        "50%",
        "9" * 400,
        None,
    ],
)
def test_parse_cpu_refuses(value: object) -> None:
    with pytest.raises(InvalidSize) as caught:
        parse_cpu(value)
    assert repr(value)[:40] in caught.value.message


@pytest.mark.parametrize(
    ("cores", "usec"), [(1.0, 1_000_000), (0.5, 500_000), (0.1, 100_000), (2, 2_000_000)]
)
def test_cpu_quota_usec(cores: float, usec: int) -> None:
    assert cpu_quota_usec(cores) == usec


def test_cpu_quota_usec_validates() -> None:
    with pytest.raises(InvalidSize):
        cpu_quota_usec(0.0)


@pytest.mark.parametrize(
    ("value", "usec"),
    [
        ("150%", 1_500_000),
        ("100%", 1_000_000),
        ("20%", 200_000),
        ("12.5%", 125_000),
        ("1%", 10_000),
    ],
)
def test_parse_percent_quota(value: str, usec: int) -> None:
    assert parse_percent_quota(value) == usec


@pytest.mark.parametrize(
    "value", ["0%", "0.5%", "150", "150 %%", "-5%", "102401%", "%", 150, 1.5, None, "x%"]
)
def test_parse_percent_quota_refuses(value: object) -> None:
    with pytest.raises(InvalidSize) as caught:
        parse_percent_quota(value)
    assert repr(value) in caught.value.message


@pytest.mark.parametrize(
    ("value", "usec"),
    [
        (0, 0),
        (10, 10_000_000),
        ("10", 10_000_000),
        ("10s", 10_000_000),
        ("1.5", 1_500_000),
        ("500ms", 500_000),
        ("500msec", 500_000),
        ("250us", 250),
        ("250\u00b5s", 250),
        ("2min", 120_000_000),
        ("2m", 120_000_000),
        ("1h", 3_600_000_000),
        ("1d", 86_400_000_000),
        ("1w", 7 * 86_400_000_000),
        ("1min 30s", 90_000_000),
        ("1min30s", 90_000_000),
        ("1h 2min 3s 4ms", 3_723_004_000),
        ("2 hours", 7_200_000_000),
        (" 5s ", 5_000_000),
    ],
)
def test_parse_timespan_usec(value: str | int, usec: int) -> None:
    assert parse_timespan_usec(value) == usec


@pytest.mark.parametrize(
    "value",
    [
        -1,
        True,
        1.5,
        None,
        "",
        "  ",
        "s",
        "10x",
        "10 mins",
        "1M",  # a month in systemd.time(7): not accepted here
        "infinity",
        "-5s",
        "1..5s",
        "1min,30s",
        "9" * 200,
        "9" * 40 + "w",
        2**63,
    ],
)
def test_parse_timespan_usec_refuses(value: object) -> None:
    with pytest.raises(InvalidOption) as caught:
        parse_timespan_usec(value)
    assert repr(value)[:40] in caught.value.message


@FAST
@given(st.text(max_size=20) | st.integers() | st.floats() | st.booleans() | st.none())
def test_parsers_raise_only_their_errors(value: object) -> None:
    for parse, error in (
        (parse_size, InvalidSize),
        (parse_cpu, InvalidSize),
        (parse_percent_quota, InvalidSize),
        (parse_timespan_usec, InvalidOption),
    ):
        with contextlib.suppress(error):
            parse(value)


@FAST
@given(st.integers(min_value=1, max_value=SIZE_MAX))
def test_sizes_in_bytes_round_trip(size: int) -> None:
    assert parse_size(size) == parse_size(str(size)) == size


@FAST
@given(st.text(alphabet="0123456789 .smhinu", max_size=400))
def test_timespans_parse_in_linear_time(text: str) -> None:
    with contextlib.suppress(InvalidOption):
        parse_timespan_usec(text)
