"""Parsers of single cgroup files: integers with v1/v2 "unlimited", flat keyed files."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hostd.cgroups.parse import UNLIMITED_AT_LEAST, parse_flat_keyed, parse_int_file

# Captured on this machine kind (v1 memory controller, Linux 6.x).
V1_OOM_CONTROL = "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
V1_CPU_STAT = "nr_periods 0\nnr_throttled 0\nthrottled_time 0\nnr_bursts 0\nburst_time 0\n"
V2_CPU_PRESSURE = (
    "some avg10=0.00 avg60=0.00 avg300=0.00 total=1234\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3203072\n", 3203072),
        ("0\n", 0),
        ("max\n", None),  # v2 unlimited
        ("9223372036854771712\n", None),  # v1 unlimited, 4 KiB pages
        ("9223372036854710272\n", None),  # v1 unlimited, 64 KiB pages
        (f"{UNLIMITED_AT_LEAST - 1}\n", UNLIMITED_AT_LEAST - 1),
        ("-1\n", None),  # v1 cpu.cfs_quota_us "no quota"
        ("", None),
        ("garbage\n", None),
        ("1 2\n", None),
    ],
)
def test_parse_int_file(text: str, expected: int | None) -> None:
    assert parse_int_file(text) == expected


@given(st.integers(min_value=0, max_value=UNLIMITED_AT_LEAST - 1))
def test_parse_int_file_reads_back_any_real_value(value: int) -> None:
    assert parse_int_file(f"{value}\n") == value


def test_parse_flat_keyed_v1_oom_control() -> None:
    assert parse_flat_keyed(V1_OOM_CONTROL) == {
        "oom_kill_disable": 0,
        "under_oom": 0,
        "oom_kill": 0,
    }


def test_parse_flat_keyed_v1_cpu_stat() -> None:
    assert parse_flat_keyed(V1_CPU_STAT)["throttled_time"] == 0


def test_parse_flat_keyed_keeps_huge_values_raw() -> None:
    # memory.stat's hierarchical_memory_limit is not a limit reading: no "unlimited" rule.
    text = "cache 2777088\nhierarchical_memory_limit 9223372036854771712\n"
    assert parse_flat_keyed(text) == {
        "cache": 2777088,
        "hierarchical_memory_limit": 9223372036854771712,
    }


def test_parse_flat_keyed_skips_lines_of_other_shapes() -> None:
    text = "usage_usec 12\nbroken\nnot_int x\n\nthree fields here\nthrottled_usec 5\n"
    assert parse_flat_keyed(text) == {"usage_usec": 12, "throttled_usec": 5}


def test_parse_flat_keyed_of_a_pressure_file_is_empty() -> None:
    assert parse_flat_keyed(V2_CPU_PRESSURE) == {}


def test_parse_flat_keyed_empty() -> None:
    assert parse_flat_keyed("") == {}


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,20}", fullmatch=True), st.integers()))
def test_parse_flat_keyed_reads_back_what_was_written(values: dict[str, int]) -> None:
    text = "".join(f"{key} {value}\n" for key, value in values.items())
    assert parse_flat_keyed(text) == values
