"""hostd.units.history: the windows a history keeps, and its values to JSON and back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hostd.units.errors import InvalidOption
from hostd.units.history import (
    DEFAULT_WINDOW,
    HISTORY_WINDOWS,
    HostHistoryView,
    HostPoint,
    UsageHistoryView,
    UsagePoint,
    window_named,
)

USAGE = UsageHistoryView(
    user="alice",
    window="1h",
    resolution_s=10,
    points=(
        UsagePoint(
            at=1_800_000_000,
            memory_bytes=2**30,
            memory_limit_bytes=2**31,
            cpu_percent=12.5,
            cpu_limit=2.0,
        ),
        UsagePoint(
            at=1_800_000_010,
            memory_bytes=None,
            memory_limit_bytes=None,
            cpu_percent=None,
            cpu_limit=None,
        ),
    ),
)
HOST = HostHistoryView(
    window="24h",
    resolution_s=300,
    points=(
        HostPoint(
            at=1_800_000_000,
            memory_committed_bytes=2**30,
            memory_capacity_bytes=2**33,
            sessions_running=1,
        ),
    ),
)


def test_windows_by_name_and_the_default() -> None:
    assert window_named(None) is HISTORY_WINDOWS[DEFAULT_WINDOW]
    assert window_named("24h").max_points == 288
    assert window_named("1h").max_points == 360


@pytest.mark.parametrize("name", ["", "1H", "7d", "x" * 40])
def test_an_unknown_window_is_refused_with_the_known_ones(name: str) -> None:
    with pytest.raises(InvalidOption) as caught:
        window_named(name)
    assert "expected one of 1h, 24h" in caught.value.message
    assert len(caught.value.message) < 80


def test_views_go_to_json_and_back() -> None:
    assert UsageHistoryView.from_dict(json.loads(json.dumps(USAGE.to_dict()))) == USAGE
    assert HostHistoryView.from_dict(json.loads(json.dumps(HOST.to_dict()))) == HOST


def test_a_whole_number_of_cores_reads_back_as_a_float() -> None:
    data = USAGE.to_dict()
    data["points"][0]["cpu_limit"] = 2
    point = UsageHistoryView.from_dict(data).points[0]
    assert point.cpu_limit == 2.0 and isinstance(point.cpu_limit, float)


def _usage_with(**changes: Any) -> dict[str, Any]:
    data = USAGE.to_dict()
    point = {**data["points"][0], **changes.pop("point", {})}
    return {**data, "points": [point], **changes}


@pytest.mark.parametrize(
    "data",
    [
        _usage_with(user=1),
        _usage_with(resolution_s=True),
        _usage_with(points={}),
        _usage_with(points=[1]),
        _usage_with(point={"cpu_percent": "high"}),
        _usage_with(point={"cpu_percent": False}),
        _usage_with(point={"memory_bytes": 1.5}),
    ],
)
def test_a_value_of_the_wrong_kind_is_a_type_error(data: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        UsageHistoryView.from_dict(data)


def test_a_missing_field_is_a_key_error() -> None:
    data = HOST.to_dict()
    del data["points"][0]["sessions_running"]
    with pytest.raises(KeyError):
        HostHistoryView.from_dict(data)
