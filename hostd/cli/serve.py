"""The ``hostd`` console script: ``hostd serve`` and ``hostd check-config`` (hostd/ layer).

Argument handling only: the config is loaded here, once, and handed to hostd.daemon.server.serve,
which owns everything after. A user's mistake (a bad or missing config file) ends in plain
lines on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from hostd.config import DEFAULT_CONFIG_PATH, Config, load_config
from hostd.units.errors import ConfigError

__all__ = ["main"]

EXIT_OK = 0
EXIT_CONFIG = 1


def _version() -> str:
    try:
        return version("hostd")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hostd",
        description="Root daemon: one transient systemd unit per user, running JupyterLab.",
    )
    parser.add_argument("--version", action="version", version=f"hostd {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the daemon (as root, under systemd)")
    serve.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help=f"config file (default: {DEFAULT_CONFIG_PATH} if it exists, else the defaults)",
    )
    check = commands.add_parser(
        "check-config", help="check a config file, print every problem, exit 1 if any"
    )
    check.add_argument(
        "path",
        nargs="?",
        type=Path,
        metavar="PATH",
        help=f"config file (default: {DEFAULT_CONFIG_PATH} if it exists, else the defaults)",
    )
    return parser


def _load(path: Path | None) -> Config | None:
    """The config, or None after printing every problem with it to stderr."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for key, message in exc.problems:
            print(f"{key}: {message}", file=sys.stderr)
        return None


def _serve(path: Path | None) -> int:
    config = _load(path)
    if config is None:
        return EXIT_CONFIG
    # Imported here: `hostd check-config` and `hostd --version` need none of the server's
    # imports (D-Bus, the web stack). No OpenSSL (the daemon never speaks TLS), uvicorn's server
    # without its command line, and pystemd's journal without its object layer (the log
    # handler's one use of it): hostd.api.lean_imports.
    from hostd.api.lean_imports import uvicorn_server_only, without_package_init, without_tls

    without_tls()
    uvicorn_server_only()
    without_package_init("pystemd")
    from hostd.daemon.server import serve

    return serve(config)


def _check_config(path: Path | None) -> int:
    config = _load(path)
    if config is None:
        return EXIT_CONFIG
    where = config.source or f"defaults, no {DEFAULT_CONFIG_PATH}"
    print(f"ok: {where} ({config.describe()})")
    # The programs each command runs, as `hostctl check-config` checks them (stat only): a
    # missing one fails every start (issue 14, F3). Imported here: serve needs none of it.
    from hostd.cli.verify_host import program_checks

    failed = False
    for check in program_checks(config):
        if check.status in ("fail", "warn"):
            failed = failed or check.status == "fail"
            fix = f" (fix: {check.fix})" if check.fix else ""
            print(f"{check.name}: {check.detail}{fix}", file=sys.stderr)
    return EXIT_CONFIG if failed else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the command in argv (sys.argv[1:] when None) and return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args.config)
    return _check_config(args.path)
