"""hostctl announce and hostctl drain: the admin's maintenance commands, and how the state
reads in `hostctl status` (cli layer; thin callers of HostdClient).

TIME is read here, in the admin's local zone (parse_drain_time: now, +30m, HH:MM, ISO 8601);
the wire carries it in UTC. The daemon checks it again: it has the last word.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any, TextIO

from hostd.api.client import HostdClient
from hostd.units.errors import InvalidInput
from hostd.units.maintenance import Drain, MaintenanceView, format_countdown, parse_drain_time

__all__ = [
    "add_maintenance_parsers",
    "describe_maintenance",
    "read_drain_time",
    "run_announce",
    "run_drain",
]


def read_drain_time(text: str) -> datetime:
    """argparse's type for --at: the admin's TIME in UTC, or a usage error saying why."""
    try:
        return parse_drain_time(text, datetime.now().astimezone())
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def add_maintenance_parsers(commands: Any) -> None:
    """announce and drain, on hostctl's subcommands."""
    announce = commands.add_parser("announce", help="show a banner on every hub page")
    what = announce.add_mutually_exclusive_group(required=True)
    what.add_argument("message", metavar="TEXT", nargs="?", help="one line of text")
    what.add_argument("--clear", action="store_true", help="remove the banner")
    announce.add_argument("--json", action="store_true", help="print the API's JSON")

    drain = commands.add_parser(
        "drain",
        help="refuse new starts, and stop every session at a time (for a reboot)",
        description=(
            "From now on every start is refused with MESSAGE, users see a countdown, and at "
            "TIME every running session is stopped. Starts stay refused after TIME (and across "
            "a reboot) until `hostctl drain --cancel`."
        ),
    )
    when = drain.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--at",
        metavar="TIME",
        type=read_drain_time,
        help="now, +30m, +1h30m, HH:MM (local; tomorrow once past) or ISO 8601",
    )
    when.add_argument("--cancel", action="store_true", help="let starts through again")
    drain.add_argument("--message", metavar="TEXT", help="why; shown to users (with --at)")
    drain.add_argument("--json", action="store_true", help="print the API's JSON")


def describe_maintenance(view: MaintenanceView, now: datetime) -> list[str]:
    """The lines `hostctl status` and the maintenance commands print; none when there is
    nothing to say."""
    lines = []
    if view.announcement is not None:
        lines.append(f"announcement: {view.announcement}")
    drain = view.drain
    if drain is not None:
        local = drain.at.astimezone()
        when = format_countdown(drain.at, now)
        state = (
            "sessions stopped; starts refused until hostctl drain --cancel"
            if when == "now"
            else f"sessions stop {when}; starts refused"
        )
        lines.append(f"draining: {local:%Y-%m-%d %H:%M:%S %Z} ({state}): {drain.message}")
    return lines


def _print(view: MaintenanceView, json_out: bool, out: TextIO, empty: str) -> None:
    if json_out:
        print(json.dumps(view.to_dict(), indent=2), file=out)
        return
    lines = describe_maintenance(view, datetime.now().astimezone())
    print("\n".join(lines) if lines else empty, file=out)


async def run_announce(client: HostdClient, args: argparse.Namespace, out: TextIO) -> None:
    view = await client.announce(None if args.clear else args.message)
    _print(view, args.json, out, "no announcement")


async def run_drain(client: HostdClient, args: argparse.Namespace, out: TextIO) -> None:
    if args.cancel:
        view = await client.drain(None)
    else:
        view = await client.drain(Drain(args.at, args.message))
    _print(view, args.json, out, "not draining: starts are let through")
