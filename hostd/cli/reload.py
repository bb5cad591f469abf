"""`hostctl reload [daemon|hub]`: check the config, restart the service, wait until it answers
(hostd/ layer: the I/O; the checks are hostd.cli.verify_host's, the verdicts hostd.cli.verify's).

Every config is checked before anything is restarted: a broken file restarts nothing. Then
``systemctl restart`` and a bounded wait for an answer — the daemon's GET /v1/health on its
socket, the hub's GET /hub/api on its port. A service that does not come up is reported with
its last journal lines. Restarting hostd never stops a session: they are units of their own.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

import httpx

from hostd.cli import verify, verify_host
from hostd.cli.config_keys import ConfigFile
from hostd.config import load_config
from hostd.units.errors import ConfigError, HostdError

__all__ = ["JOURNAL_LINES", "UNITS", "WAIT_S", "Target", "health_url", "reload"]

UNITS: Final[dict[ConfigFile, str]] = {"daemon": "hostd.service", "hub": "hostd-hub.service"}
WAIT_S: Final = 60.0
JOURNAL_LINES: Final = 20
_ATTEMPT_S: Final = 5.0
_SYSTEMCTL_S: Final = 120.0


@dataclass(frozen=True)
class Target:
    """One service to reload: its config file and unit."""

    file: ConfigFile
    path: Path

    @property
    def unit(self) -> str:
        return UNITS[self.file]


def _run(argv: list[str], timeout: float = _SYSTEMCTL_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def _loaded(unit: str) -> bool:
    shown = _run(["systemctl", "show", "-p", "LoadState", "--value", unit])
    return shown.returncode == 0 and shown.stdout.strip() == "loaded"


def health_url(ip: str, port: int, *, tls: bool) -> str:
    """Where the hub answers on this host: its ip ("" and 0.0.0.0: loopback; "::": ::1)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(ip, ip)  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}/hub/api"


async def _daemon_health(socket_path: str) -> None:
    from hostd.api.client import HostdClient

    async with HostdClient(socket_path) as client:
        await asyncio.wait_for(client.health(), timeout=_ATTEMPT_S)


def _daemon_probe(path: Path) -> tuple[str, Callable[[], str | None]]:
    socket_path = str(load_config(path).daemon.socket)

    def probe() -> str | None:
        try:
            asyncio.run(_daemon_health(socket_path))
        except (HostdError, TimeoutError, OSError) as exc:
            return exc.message if isinstance(exc, HostdError) else str(exc) or type(exc).__name__
        return None

    return f"GET /v1/health on {socket_path}", probe


def _hub_probe(path: Path) -> tuple[str, Callable[[], str | None]]:
    from hostd.api.hub.settings import load_hub_config  # the hub's rules, never its app

    hub = load_hub_config(path)
    tls = hub.tls or verify_host.SELF_SIGNED_DROPIN.exists()
    url = health_url(hub.ip, hub.port, tls=tls)

    def probe() -> str | None:
        try:
            # Whether our own hub answers, not whom to trust: its certificate may be
            # self-signed or name a host other than the loopback address asked here.
            response = httpx.get(url, timeout=_ATTEMPT_S, verify=False)  # noqa: S501
        except httpx.HTTPError as exc:
            return str(exc) or type(exc).__name__
        return None if response.status_code == 200 else f"HTTP {response.status_code}"

    return f"GET {url}", probe


def _journal(unit: str) -> list[str]:
    shown = _run(["journalctl", "-u", unit, "-n", str(JOURNAL_LINES), "--no-pager", "-o", "cat"])
    return shown.stdout.splitlines() or [f"(no journal: {shown.stderr.strip()})"]


def _wait(probe: Callable[[], str | None], timeout_s: float) -> tuple[float, str | None]:
    """Seconds until probe passed and None, or the time waited and its last complaint."""
    start = time.monotonic()
    while True:
        complaint = probe()
        waited = time.monotonic() - start
        if complaint is None or waited >= timeout_s:
            return waited, complaint
        time.sleep(0.5)


def _checks(target: Target) -> list[verify.Check]:
    if target.file == "daemon":
        return verify_host.check_config(target.path)
    return verify_host.check_hub_config(target.path)


def reload(
    targets: Sequence[Target], *, explicit: bool, out: TextIO, err: TextIO, timeout_s: float
) -> int:
    """Check every target's config, then restart each and wait for it; the exit status.

    explicit: the admin named the service, so a hub that is not installed is an error, not
    a service left out."""
    chosen = []
    for target in targets:
        if target.file == "hub" and not _loaded(target.unit):
            if explicit:
                print(f"hostctl reload: {target.unit} is not installed", file=err)
                return 1
            print(f"{target.unit} is not installed: left out", file=out)
            continue
        chosen.append(target)
    refused = False
    for target in chosen:
        checks = _checks(target)
        if verify.exit_status(checks) != 0:
            refused = True
            print(verify.format_report(checks, title=f"check of {target.path}"), file=err)
        else:
            print(f"checked {target.path}: ok", file=out)
    if refused:
        print("hostctl reload: refused: fix the config first; nothing restarted", file=err)
        return 1
    for target in chosen:
        try:
            what, probe = (_daemon_probe if target.file == "daemon" else _hub_probe)(target.path)
        except ConfigError as exc:  # changed since the check
            print(f"hostctl reload: {exc.message}", file=err)
            return 1
        restarted = _run(["systemctl", "restart", target.unit])
        if restarted.returncode == 0:
            waited, complaint = _wait(probe, timeout_s)
        else:
            waited, complaint = 0.0, restarted.stderr.strip() or f"exit {restarted.returncode}"
        if complaint is not None:
            print(
                f"hostctl reload: {target.unit} did not come up ({what}: {complaint}) "
                f"after {waited:.1f} s; its last journal lines:",
                file=err,
            )
            print("\n".join(f"  {line}" for line in _journal(target.unit)), file=err)
            return 1
        print(f"restarted {target.unit}: answers {what} after {waited:.1f} s", file=out)
    return 0
