"""hostctl announce, drain and the maintenance lines of status, against a served fake daemon;
and how the state reads (describe_maintenance)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hostd.cli.maintenance import describe_maintenance, read_drain_time
from hostd.units.maintenance import Drain, MaintenanceView
from tests.api.fake import FakeSessionService
from tests.hostd.cli.test_hostctl import Capture, daemon, fake, hostctl_at, served  # noqa: F401

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def test_the_state_reads_as_lines() -> None:
    assert describe_maintenance(MaintenanceView(), NOW) == []
    at = NOW + timedelta(minutes=30)
    local = f"{at.astimezone():%Y-%m-%d %H:%M:%S %Z}"
    assert describe_maintenance(MaintenanceView("Kernel update", Drain(at, "Reboot")), NOW) == [
        "announcement: Kernel update",
        f"draining: {local} (sessions stop in 30 minutes; starts refused): Reboot",
    ]
    assert describe_maintenance(MaintenanceView(drain=Drain(NOW, "Reboot")), NOW) == [
        f"draining: {NOW.astimezone():%Y-%m-%d %H:%M:%S %Z} "
        "(sessions stopped; starts refused until hostctl drain --cancel): Reboot"
    ]


def test_a_drain_time_is_read_or_refused_as_a_usage_error() -> None:
    at = read_drain_time("+30m")
    assert at.tzinfo == UTC
    assert timedelta(minutes=29) < at - datetime.now(UTC) <= timedelta(minutes=30)
    with pytest.raises(argparse.ArgumentTypeError, match="is none of now"):
        read_drain_time("tonight")
    with pytest.raises(argparse.ArgumentTypeError, match="in the past"):
        read_drain_time("2001-01-01T00:00")


def test_announce_and_clear(daemon: Path, fake: FakeSessionService, capsys: Capture) -> None:  # noqa: F811
    assert hostctl_at(daemon, "announce", "Kernel update tonight") == 0
    assert capsys.readouterr().out == "announcement: Kernel update tonight\n"
    assert fake.maintenance_view.announcement == "Kernel update tonight"
    assert hostctl_at(daemon, "announce", "--clear", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {"announcement": None, "drain": None}
    assert hostctl_at(daemon, "announce") == 2  # neither a text nor --clear
    assert hostctl_at(daemon, "announce", "two\nlines") == 1
    assert "one line of printable text [invalid-input]" in capsys.readouterr().err


def test_drain_refuses_starts_then_cancel_lets_them_through(
    daemon: Path,  # noqa: F811
    fake: FakeSessionService,  # noqa: F811
    capsys: Capture,
) -> None:
    assert hostctl_at(daemon, "drain", "--at", "+30m", "--message", "Reboot for a kernel") == 0
    out = capsys.readouterr().out
    assert "(sessions stop in 30 minutes; starts refused): Reboot for a kernel" in out
    drain = fake.maintenance_view.drain
    assert drain is not None and drain.message == "Reboot for a kernel"

    assert hostctl_at(daemon, "start", "alice") == 1
    err = capsys.readouterr().err
    assert "Reboot for a kernel (new sessions are refused for maintenance) [draining]" in err

    assert hostctl_at(daemon, "status") == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("draining: ")
    assert hostctl_at(daemon, "status", "--json") == 0
    assert json.loads(capsys.readouterr().out)["maintenance"]["drain"]["message"] == (
        "Reboot for a kernel"
    )

    assert hostctl_at(daemon, "drain", "--cancel") == 0
    assert capsys.readouterr().out == "not draining: starts are let through\n"
    assert hostctl_at(daemon, "start", "alice") == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["drain", "--at", "+30m"], "give --at TIME with --message TEXT"),
        (["drain", "--cancel", "--message", "x"], "give --at TIME with --message TEXT"),
        (["drain", "--at", "yesterday", "--message", "x"], "is none of now"),
        (["drain", "--at", "2001-01-01T00:00", "--message", "x"], "in the past"),
        (["drain", "--at", "+2000h", "--message", "x"], "more than 30 days ahead"),
        (["drain"], "one of the arguments --at --cancel is required"),
    ],
)
def test_a_bad_drain_is_a_usage_error_with_why(
    daemon: Path,  # noqa: F811
    fake: FakeSessionService,  # noqa: F811
    capsys: Capture,
    argv: list[str],
    message: str,
) -> None:
    assert hostctl_at(daemon, *argv) == 2
    assert message in capsys.readouterr().err
    assert fake.maintenance_view == MaintenanceView()
