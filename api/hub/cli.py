"""The ``hostd-hub`` console script: the hub's web server (hostd/ layer: arguments only).

    hostd-hub [--config /etc/hostd/hub.toml] [--ip IP] [--port 8000]
              [--ssl-cert CERT --ssl-key KEY] [--allow-root] [--check-config]

Options override the config file's [hub] keys of the same name. A user's mistake (a bad
config, a state directory it cannot use, root without --allow-root) ends in plain lines on
stderr and exit status 1, never a traceback.

Why not root: the hub parses everything the network sends and proxies users' servers; as
root, any bug there would be a bug with root's powers. Everything privileged is the daemon's,
behind its socket (Cockpit's split). --allow-root exists for a throwaway test machine only.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from hostd.api.hub.settings import DEFAULT_HUB_CONFIG_PATH, HubConfig, load_hub_config
from hostd.units.errors import ConfigError

__all__ = ["main"]

EXIT_OK = 0
EXIT_ERROR = 1


def _version() -> str:
    try:
        return version("hostd")
    except PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hostd-hub",
        description="The hub: PAM login through hostd, users' servers, the /user/ proxy.",
    )
    parser.add_argument("--version", action="version", version=f"hostd-hub {_version()}")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help=f"config file (default: {DEFAULT_HUB_CONFIG_PATH} if it exists, else defaults)",
    )
    parser.add_argument("--ip", help='address to listen on ("" = every interface)')
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument("--ssl-cert", type=Path, metavar="PATH", help="serve HTTPS: PEM cert")
    parser.add_argument("--ssl-key", type=Path, metavar="PATH", help="serve HTTPS: PEM key")
    parser.add_argument(
        "--allow-root",
        action="store_true",
        help="run even as root (never on a real machine: the hub is meant to hold no privilege)",
    )
    parser.add_argument(
        "--check-config", action="store_true", help="check the config, print problems, exit"
    )
    return parser


def _load(args: argparse.Namespace) -> HubConfig | None:
    overrides = {
        "ip": args.ip,
        "port": args.port,
        "ssl_cert": args.ssl_cert,
        "ssl_key": args.ssl_key,
    }
    try:
        return load_hub_config(args.config, overrides=overrides)
    except ConfigError as exc:
        for key, message in exc.problems:
            print(f"{key}: {message}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    """Run the hub (or check its config); the exit status."""
    args = _parser().parse_args(argv)
    config = _load(args)
    if config is None:
        return EXIT_ERROR
    if args.check_config:
        where = args.config or (
            DEFAULT_HUB_CONFIG_PATH if DEFAULT_HUB_CONFIG_PATH.exists() else "defaults"
        )
        scheme = "https" if config.tls else "http"
        print(f"ok: {where} ({scheme} on {config.ip or '*'}:{config.port})")
        return EXIT_OK
    if os.geteuid() == 0 and not args.allow_root:
        print(
            "hostd-hub: refusing to run as root: run it as its own unprivileged user in group "
            "hostd (the daemon does everything privileged); --allow-root overrides this",
            file=sys.stderr,
        )
        return EXIT_ERROR
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Imported here: --check-config and --version need none of the web stack. uvicorn's server
    # without its command line, and no OpenSSL unless the hub serves HTTPS (its one use of TLS,
    # certificates or ACME): hostd.api.lean_imports.
    from hostd.api.lean_imports import uvicorn_server_only, without_tls

    if not config.tls:
        without_tls()
    uvicorn_server_only()
    from hostd.api.hub.server import StartupError, serve

    try:
        return serve(config)
    except StartupError as exc:
        print(f"hostd-hub: {exc}", file=sys.stderr)
        return EXIT_ERROR
