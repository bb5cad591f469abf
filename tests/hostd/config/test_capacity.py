"""hostd.config.capacity: [capacity], each number within its range, every problem by key."""

from __future__ import annotations

import pytest

from hostd.config import CapacityConfig, parse_config
from hostd.config.capacity import parse_capacity
from tests.hostd.config.samples import problems_of


def test_capacity_defaults() -> None:
    assert (
        parse_config("").capacity
        == CapacityConfig()
        == CapacityConfig(
            max_concurrent_starts=4,
            memory_share=0.9,
            idle_timeout_s=0.0,
            idle_cpu_percent=2.0,
            retry_after_s=30,
        )
    )


def test_every_capacity_key_is_read() -> None:
    capacity = parse_config(
        "[capacity]\nmax_concurrent_starts = 2\nmemory_share = 0.5\nidle_timeout = 3600\n"
        "idle_cpu_percent = 5\nretry_after = 10\n"
    ).capacity
    assert capacity == CapacityConfig(
        max_concurrent_starts=2,
        memory_share=0.5,
        idle_timeout_s=3600.0,
        idle_cpu_percent=5,
        retry_after_s=10,
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("max_concurrent_starts = 0", "0 is outside 1..1000"),
        ("max_concurrent_starts = 1.5", "expected a whole number, not 1.5"),
        ("memory_share = 'most'", "expected a number, not 'most'"),
        ("memory_share = 1.5", "1.5 is outside 0.001..1"),
        ("idle_timeout = -1", "expected 0 to 2592000 seconds, not -1"),
        ("idle_timeout = true", "expected a number of seconds, not True"),
        ("idle_warning = -5", "expected 0 to 2592000 seconds, not -5"),
        ("idle_cpu_percent = 10001", "10001 is outside 0..10000"),
        ("retry_after = 0", "0 is outside 1..3600"),
        (
            "idle = 5",
            "unknown option; known: max_concurrent_starts, memory_share, idle_timeout, "
            "idle_warning, idle_cpu_percent, retry_after",
        ),
    ],
)
def test_capacity_values_that_do_not_check_out(text: str, problem: str) -> None:
    key = text.split(" =")[0]
    assert problems_of(f"[capacity]\n{text}\n") == [(f"capacity.{key}", problem)]


def test_capacity_must_be_a_table() -> None:
    problems: list[tuple[str, str]] = []
    assert parse_capacity(5, problems) == CapacityConfig()
    assert problems == [("capacity", "expected a table [capacity]")]
