"""hostctl: the admin's command line for the daemon's local API (a thin HostdClient caller).

It parses arguments, calls hostd.api.client.HostdClient, and formats what comes back; the formatting
helpers are small pure functions. `check-config` and `verify` need no API: they run
hostd.cli.verify_host here and print its report; nor do `config` and `reload`
(hostd.cli.config_command), which edit the config files and restart the services; nor
`import` and `export` (hostd.cli.migrate_command), which carry other systems' settings in and
out. Exit
status: 0 ok, 1 an error from the API (or a failed check, a refused edit), 2 a usage error, 3
the daemon cannot be reached, 130 interrupted. Never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TextIO

from hostd.api.client import DEFAULT_SOCKET, DaemonUnreachable, HostdClient, StartResult
from hostd.cli.config_command import add_config_parsers, run_config, run_reload
from hostd.cli.maintenance import (
    add_maintenance_parsers,
    describe_maintenance,
    run_announce,
    run_drain,
)
from hostd.cli.migrate_command import add_migrate_parsers, run_export, run_import
from hostd.config import DEFAULT_CONFIG_PATH
from hostd.units.errors import HostdError, SpawnFailed
from hostd.units.failures import describe_oom_kills
from hostd.units.sizes import format_size
from hostd.units.values import HostView, LogLine, SessionView, UsageView

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "build_parser",
    "describe_error",
    "describe_host",
    "describe_limits",
    "describe_start",
    "describe_stop",
    "format_cpu",
    "format_cpu_percent",
    "format_gpus",
    "format_memory",
    "format_size",
    "format_table",
    "format_time",
    "main",
    "oom_notes",
    "session_rows",
    "session_table",
]

EXIT_OK: Final = 0
EXIT_API_ERROR: Final = 1
EXIT_USAGE: Final = 2  # argparse's own
EXIT_UNREACHABLE: Final = 3
EXIT_INTERRUPTED: Final = 130  # 128 + SIGINT, as shells report it

SOCKET_ENV: Final = "HOSTD_SOCKET"
UNREACHABLE_HINT: Final = "is hostd running? systemctl status hostd.socket"
TABLE_COLUMNS: Final = (
    "USER",
    "STATE",
    "UNIT",
    "URL",
    "MEM",  # used/limit
    "CPU%",  # recent use; 100% is one core busy
    "CPU LIMIT",
    "STARTED",
    "RESULT",
)
NONE: Final = "-"
# Sessions that have a cgroup to measure (usage of any other is SessionNotFound).
MEASURABLE: Final = frozenset({"starting", "running"})


# -- formatting ---------------------------------------------------------------------------


def format_cpu(cores: float | None) -> str:
    """Cores as given (1, 1.5, 0.25); "-" for none."""
    return NONE if cores is None else f"{cores:g}"


def format_time(moment: datetime | None) -> str:
    """A start time to the second, in local time when the zone is known; "-" for none."""
    if moment is None:
        return NONE
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def format_memory(usage: UsageView | None) -> str:
    """Memory as "used/limit": 412.3M/2.0G, 412.3M/- without a limit; "-" for no usage."""
    if usage is None:
        return NONE
    return f"{format_size(usage.memory_bytes)}/{format_size(usage.memory_limit_bytes)}"


def format_cpu_percent(usage: UsageView | None) -> str:
    """Recent CPU use as a whole percentage (37%, 150% for one and a half cores); "-"."""
    if usage is None or usage.cpu_percent is None:
        return NONE
    return f"{usage.cpu_percent:.0f}%"


_SERVER_HELP = "a named server of the user (default: the default server)"


def _session_label(session: SessionView) -> str:
    """How a session is named in a table: its user, or user:server for a named server (the
    unit's name, jupyter-<user>:<server>.service, between prefix and suffix)."""
    return f"{session.user}:{session.server}" if session.server else session.user


def session_rows(
    sessions: Sequence[SessionView], usage: Mapping[str, UsageView] | None = None
) -> list[tuple[str, ...]]:
    """One row of TABLE_COLUMNS per session; ``usage`` by user (a missing one shows "-")."""
    usage = usage or {}
    return [
        (
            _session_label(session),
            session.state,
            session.unit,
            session.url or NONE,
            format_memory(usage.get(_session_label(session))),
            format_cpu_percent(usage.get(_session_label(session))),
            format_cpu(session.limits.cpu_limit if session.limits else None),
            format_time(session.started_at),
            session.result or NONE,
        )
        for session in sessions
    ]


def format_gpus(gpus: Sequence[int]) -> str:
    """The GPUs a session holds, as CUDA_VISIBLE_DEVICES lists them: "0,2"; "-" for none."""
    return ",".join(str(gpu) for gpu in gpus) or NONE


def session_table(
    sessions: Sequence[SessionView], usage: Mapping[str, UsageView] | None = None
) -> str:
    """TABLE_COLUMNS, plus PROFILE (the [[profile_list]] choice) once a session has one and
    GPUS once a session holds a GPU: a host without either shows the table as it always did."""
    columns: tuple[str, ...] = TABLE_COLUMNS
    rows = session_rows(sessions, usage)
    if any(session.profile_slug for session in sessions):
        columns = (*columns, "PROFILE")
        rows = [(*row, s.profile_slug or NONE) for row, s in zip(rows, sessions, strict=True)]
    if any(session.gpus for session in sessions):
        columns = (*columns, "GPUS")
        rows = [(*row, format_gpus(s.gpus)) for row, s in zip(rows, sessions, strict=True)]
    return format_table(columns, rows)


def oom_notes(sessions: Sequence[SessionView], usage: Mapping[str, UsageView]) -> list[str]:
    """A line under the table for each session in which the kernel OOM-killed processes that
    it outlived (OOMPolicy=continue): "alice: kernel killed: out of memory (2 processes)"."""
    notes = []
    for session in sessions:
        seen = usage.get(_session_label(session))
        note = None if seen is None else describe_oom_kills(seen.oom_kills)
        if note is not None:
            notes.append(f"{_session_label(session)}: {note}")
    return notes


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, without trailing blanks."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def describe_start(result: StartResult) -> str:
    session = result.session
    verb = "started" if result.created else "already running:"
    where = f" at {session.url}" if session.url else ""
    return f"{verb} {session.user} ({session.unit}), {session.state}{where}"


def describe_stop(session: SessionView) -> str:
    result = f", result {session.result}" if session.result else ""
    return f"stopped {session.user} ({session.unit}), {session.state}{result}"


def describe_limits(session: SessionView) -> str:
    limits = session.limits
    memory = format_size(limits.mem_limit_bytes if limits else None)
    cpu = format_cpu(limits.cpu_limit if limits else None)
    return f"limits of {session.user} ({session.unit}): memory {memory}, CPU {cpu}"


def _share(part: float, whole: float) -> str:
    return f" ({part / whole:.0%})" if whole > 0 else ""


def describe_host(host: HostView) -> str:
    """A few aligned lines: the machine, then what the sessions ask of it."""
    limits, capacity = host.memory_limits_bytes, host.memory_capacity_bytes
    rows = [
        (
            "memory",
            f"{format_size(host.memory_available_bytes)} available of "
            f"{format_size(host.memory_total_bytes)}",
        ),
        ("CPUs", str(host.cpus)),
        ("sessions", f"{host.sessions_running} running, {host.starts_waiting} starts waiting"),
        (
            "memory limits",
            f"{format_size(limits)} of {format_size(capacity)} capacity{_share(limits, capacity)}",
        ),
        ("CPU limits", f"{format_cpu(host.cpu_limits)} of {host.cpus} cores"),
    ]
    width = max(len(label) for label, _ in rows) + 1
    return "\n".join(f"{label + ':':<{width}}  {value}" for label, value in rows)


def describe_error(error: HostdError) -> list[str]:
    """The lines hostctl prints to stderr for an error: message and code, then evidence."""
    lines = [f"hostctl: {error.message} [{error.code}]"]
    if isinstance(error, SpawnFailed):
        result, status = error.details.get("result"), error.details.get("exit_status")
        if result is not None or status is not None:
            shown = NONE if status is None else status
            lines.append(f"  result: {result or NONE}, exit status: {shown}")
        log = error.details.get("log")
        if isinstance(log, list) and log:
            lines.append("  last log lines:")
            lines.extend(f"    {line}" for line in log)
    if isinstance(error, DaemonUnreachable):
        lines.append(f"hostctl: {UNREACHABLE_HINT}")
    return lines


def _print_json(data: Any, out: TextIO) -> None:
    print(json.dumps(data, indent=2), file=out)


# -- arguments ----------------------------------------------------------------------------


def _cores(text: str) -> float:
    try:
        cores = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of cores: {text!r}") from None
    if not math.isfinite(cores):
        raise argparse.ArgumentTypeError(f"not a number of cores: {text!r}")
    return cores


def _variable(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hostctl", description="Manage JupyterLab sessions through hostd's local API."
    )
    parser.add_argument(
        "--socket",
        metavar="PATH",
        help=f"the daemon's socket (default: ${SOCKET_ENV} or {DEFAULT_SOCKET})",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    start = commands.add_parser("start", help="start a user's session")
    start.add_argument("user", metavar="USER")
    start.add_argument("--server", metavar="NAME", default="", help=_SERVER_HELP)
    start.add_argument("--mem", metavar="SIZE", help="memory limit: bytes or 512M, 2G, ...")
    start.add_argument("--cpu", metavar="CORES", type=_cores, help="CPU limit in cores: 1.5")
    start.add_argument(
        "--env",
        metavar="K=V",
        type=_variable,
        action="append",
        default=[],
        help="an environment variable for the session (repeatable)",
    )
    start.add_argument("--default-url", metavar="PATH", help="the path it opens on: /lab")
    start.add_argument(
        "--profile", metavar="SLUG", help="a [[profile_list]] choice (default: the default one)"
    )
    start.add_argument(
        "--no-wait", action="store_true", help="answer at once, not when the server answers"
    )
    start.add_argument("--json", action="store_true", help="print the API's JSON")

    stop = commands.add_parser("stop", help="stop a user's session")
    stop.add_argument("user", metavar="USER")
    stop.add_argument("--server", metavar="NAME", default="", help=_SERVER_HELP)
    stop.add_argument("--json", action="store_true", help="print the API's JSON")

    status = commands.add_parser("status", help="show every session, or one user's")
    status.add_argument("user", metavar="USER", nargs="?")
    status.add_argument("--server", metavar="NAME", default="", help=_SERVER_HELP)
    status.add_argument("--json", action="store_true", help="print the API's JSON")

    limits = commands.add_parser("set", help="change a running session's limits live")
    limits.add_argument("user", metavar="USER")
    limits.add_argument("--mem", metavar="SIZE", help="memory limit: bytes or 512M, 2G, ...")
    limits.add_argument("--cpu", metavar="CORES", type=_cores, help="CPU limit in cores: 1.5")
    limits.add_argument("--json", action="store_true", help="print the API's JSON")

    host = commands.add_parser("host", help="show the machine and what the sessions ask of it")
    host.add_argument("--json", action="store_true", help="print the API's JSON")

    logs = commands.add_parser("logs", help="print a session's log")
    logs.add_argument("user", metavar="USER")
    logs.add_argument("--server", metavar="NAME", default="", help=_SERVER_HELP)
    logs.add_argument("-n", "--lines", metavar="N", type=int, default=100, help="default 100")
    logs.add_argument("-f", "--follow", action="store_true", help="follow until Ctrl-C")

    # These two run here, without the daemon's API.
    check = commands.add_parser(
        "check-config", help="check a config file and what it names on this machine"
    )
    check.add_argument(
        "path",
        metavar="PATH",
        nargs="?",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help=f"default {DEFAULT_CONFIG_PATH}",
    )
    verify = commands.add_parser(
        "verify",
        help="check the installation: units, socket, PAM, cgroups, session environment (root)",
    )
    verify.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help=f"default {DEFAULT_CONFIG_PATH}",
    )
    add_maintenance_parsers(commands)
    add_config_parsers(commands)
    add_migrate_parsers(commands)
    return parser


def _run_local(args: argparse.Namespace, out: TextIO) -> int:
    """check-config, verify, config, reload, import and export: exit status 1 if any check
    failed or an edit was refused."""
    if args.command == "config":
        return run_config(args, out, sys.stderr)
    if args.command == "import":
        return run_import(args, out, sys.stderr)
    if args.command == "export":
        return run_export(args, out, sys.stderr)
    if args.command == "reload":
        if os.geteuid() != 0:
            print("hostctl: reload needs root (it restarts services)", file=sys.stderr)
            return EXIT_API_ERROR
        return run_reload(args, out, sys.stderr)
    # Imported here: the other commands need none of it.
    from hostd.cli import verify, verify_host

    if args.command == "check-config":
        checks = verify_host.check_config(args.path)
        print(verify.format_report(checks, title="hostctl check-config"), file=out)
        return verify.exit_status(checks)
    if os.geteuid() != 0:
        print(
            "hostctl: verify needs root (it reads the daemon's files and starts a probe unit)",
            file=sys.stderr,
        )
        return EXIT_API_ERROR
    checks = verify_host.verify(args.config)
    print(verify.format_report(checks), file=out)
    return verify.exit_status(checks)


# -- commands -----------------------------------------------------------------------------


async def _start(client: HostdClient, args: argparse.Namespace, out: TextIO) -> None:
    result = await client.start(
        args.user,
        mem_limit=args.mem,
        cpu_limit=args.cpu,
        environment=dict(args.env) or None,
        default_url=args.default_url,
        wait=not args.no_wait,
        profile=args.profile,
        server=args.server,
    )
    if args.json:
        _print_json(result.session.to_dict(), out)
    else:
        print(describe_start(result), file=out)


async def _stop(client: HostdClient, args: argparse.Namespace, out: TextIO) -> None:
    session = await client.stop(args.user, server=args.server)
    if args.json:
        _print_json(session.to_dict(), out)
    else:
        print(describe_stop(session), file=out)


async def _usage_or_none(client: HostdClient, session: SessionView) -> UsageView | None:
    if session.state not in MEASURABLE:
        return None
    try:
        return await client.usage(session.user, server=session.server)
    except HostdError:
        return None  # ended meanwhile, or not measurable: the table shows "-", not an error


async def _usage_of(client: HostdClient, sessions: Sequence[SessionView]) -> dict[str, UsageView]:
    """Usage of every measurable session, read concurrently; unreadable ones are left out."""
    found = await asyncio.gather(*(_usage_or_none(client, session) for session in sessions))
    return {usage.user: usage for usage in found if usage is not None}


def _with_usage(session: SessionView, usage: Mapping[str, UsageView]) -> dict[str, Any]:
    seen = usage.get(_session_label(session))
    return {**session.to_dict(), "usage": None if seen is None else seen.to_dict()}


async def _status(client: HostdClient, args: argparse.Namespace, out: TextIO) -> None:
    if args.user is not None:
        session = await client.get(args.user, server=args.server)
        usage = await _usage_of(client, [session])
        if args.json:
            _print_json(_with_usage(session, usage), out)
        else:
            print(session_table([session], usage), file=out)
            _print_lines(oom_notes([session], usage), out)
        return
    sessions, maintenance = await asyncio.gather(client.list(), client.maintenance())
    usage = await _usage_of(client, sessions)
    if args.json:
        _print_json(
            {
                "sessions": [_with_usage(session, usage) for session in sessions],
                "maintenance": maintenance.to_dict(),
            },
            out,
        )
        return
    # First: a drain or an announcement is what an admin must not miss.
    _print_lines(describe_maintenance(maintenance, datetime.now().astimezone()), out)
    if sessions:
        print(session_table(sessions, usage), file=out)
        _print_lines(oom_notes(sessions, usage), out)
    else:
        print("no sessions", file=out)


def _print_lines(lines: Sequence[str], out: TextIO) -> None:
    for line in lines:
        print(line, file=out)


async def _set(client: HostdClient, args: argparse.Namespace, out: TextIO) -> None:
    session = await client.set_limits(args.user, mem_limit=args.mem, cpu_limit=args.cpu)
    if args.json:
        _print_json(session.to_dict(), out)
    else:
        print(describe_limits(session), file=out)


async def _host(client: HostdClient, args: argparse.Namespace, out: TextIO) -> None:
    host = await client.host()
    if args.json:
        _print_json(host.to_dict(), out)
    else:
        print(describe_host(host), file=out)


def _print_line(line: LogLine, out: TextIO) -> None:
    print(line.message, file=out, flush=True)


async def _logs(client: HostdClient, args: argparse.Namespace, out: TextIO) -> None:
    if not args.follow:
        for line in await client.logs(args.user, lines=args.lines, server=args.server):
            _print_line(line, out)
        return
    async with aclosing(client.follow(args.user, server=args.server)) as lines:
        async for line in lines:
            _print_line(line, out)


_COMMANDS: Final[
    Mapping[str, Callable[[HostdClient, argparse.Namespace, TextIO], Coroutine[Any, Any, None]]]
] = {
    "start": _start,
    "stop": _stop,
    "status": _status,
    "set": _set,
    "host": _host,
    "logs": _logs,
    "announce": run_announce,
    "drain": run_drain,
}


async def _run(args: argparse.Namespace, socket_path: str, out: TextIO) -> None:
    async with HostdClient(socket_path) as client:
        await _COMMANDS[args.command](client, args, out)


def main(argv: list[str] | None = None) -> int:
    """Run hostctl with ``argv`` (default: sys.argv[1:]); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "set" and args.mem is None and args.cpu is None:
            parser.error("set: give --mem SIZE, --cpu CORES or both")
        if args.command == "drain" and (args.at is None) != (args.message is None):
            parser.error("drain: give --at TIME with --message TEXT, or --cancel alone")
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command in ("check-config", "verify", "config", "reload", "import", "export"):
        try:
            return _run_local(args, sys.stdout)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    socket_path = args.socket or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET
    try:
        asyncio.run(_run(args, socket_path, sys.stdout))
    except KeyboardInterrupt:
        # Ctrl-C is how a follow ends; anything else it stops was interrupted.
        return EXIT_OK if args.command == "logs" and args.follow else EXIT_INTERRUPTED
    except DaemonUnreachable as exc:
        print("\n".join(describe_error(exc)), file=sys.stderr)
        return EXIT_UNREACHABLE
    except HostdError as exc:
        print("\n".join(describe_error(exc)), file=sys.stderr)
        return EXIT_API_ERROR
    except BrokenPipeError:
        # stdout closed early (hostctl logs -f | head): not an error. Point it at /dev/null
        # so the interpreter's last flush does not fail again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        print(f"hostctl: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_API_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
