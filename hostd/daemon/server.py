"""``hostd serve``: the daemon's lifecycle in one place (host layer).

Wires, in order: logging (journald with structured fields when it is there), the [shared]
scratch directory (made if missing), the session manager (systemd worker, store, reattach),
the listening socket (socket-activated, or bound here 0660 root:<group>), uvicorn with the
peer's SO_PEERCRED attached to every request, sd_notify READY=1, and on SIGTERM a bounded
graceful shutdown with STOPPING=1. Stopping the daemon never stops sessions: they are
systemd's units, not our children.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import socket
import struct
import sys
from pathlib import Path
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from hostd.api.daemon import PEER_SCOPE_KEY, build_daemon_app
from hostd.api.heap import trim_heap_forever
from hostd.config import Config
from hostd.daemon.scratch import ensure_scratch
from hostd.daemon.sessions import SessionManager
from hostd.units.values import PeerCredentials

__all__ = [
    "JournalHandler",
    "PeerCredentialsApp",
    "PeerCredentialsProtocol",
    "listening_socket",
    "notify",
    "peer_credentials",
    "run",
    "serve",
    "setup_logging",
]

log = logging.getLogger("hostd")

SD_LISTEN_FDS_START = 3
GRACEFUL_SHUTDOWN_S = 5


class PeerCredentialsApp:
    """ASGI wrapper that puts the connection's peer into every request's scope."""

    def __init__(self, app: Any, peer: PeerCredentials | None) -> None:
        self.app = app
        self.peer = peer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope[PEER_SCOPE_KEY] = self.peer
        await self.app(scope, receive, send)


class PeerCredentialsProtocol(H11Protocol):
    """uvicorn's h11 protocol, reading SO_PEERCRED once per connection.

    ASGI has no field for the peer of a Unix socket, and the kernel's answer is the only one
    to trust (not a header): so it is read where the socket is, and handed to the app.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app = PeerCredentialsApp(self.app, peer_credentials(transport))


def peer_credentials(transport: asyncio.BaseTransport) -> PeerCredentials | None:
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return PeerCredentials(pid=pid, uid=uid, gid=gid)


def listening_socket(config: Config) -> socket.socket:
    """The socket systemd passed us (hostd.socket), or one bound here."""
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1":
        for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(key, None)
        return socket.socket(fileno=SD_LISTEN_FDS_START)
    path = config.daemon.socket
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True)
        path.parent.chmod(0o755)  # the group's members must reach the socket, whatever the umask
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Bound under a restrictive umask and then opened to the group: never a moment at 0666
    # (uvicorn --uds would chmod it to 0666).
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    try:
        gid = grp.getgrnam(config.daemon.socket_group).gr_gid
    except KeyError:
        log.warning("group %r does not exist: the socket is root-only", config.daemon.socket_group)
    else:
        os.chown(path, 0, gid)
        path.chmod(config.daemon.socket_mode)
    sock.listen(128)
    return sock


def notify(*states: str) -> None:
    """sd_notify, by hand: one datagram to $NOTIFY_SOCKET (a leading @ is abstract)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
        sock.sendto("\n".join(states).encode(), address)


class JournalHandler(logging.Handler):
    """Log records as journal entries with fields of their own (HOSTD_USER, UNIT, ...)."""

    PRIORITY: ClassVar[dict[int, int]] = {
        logging.DEBUG: 7,
        logging.INFO: 6,
        logging.WARNING: 4,
        logging.ERROR: 3,
        logging.CRITICAL: 2,
    }
    FIELDS = ("HOSTD_USER", "UNIT")

    def __init__(self) -> None:
        super().__init__()
        from pystemd import journal

        self._send = journal.sendv

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = [
                f"MESSAGE={self.format(record)}",
                f"PRIORITY={self.PRIORITY.get(record.levelno, 6)}",
                "SYSLOG_IDENTIFIER=hostd",
                f"LOGGER={record.name}",
            ]
            fields += [
                f"{key}={getattr(record, key)}" for key in self.FIELDS if hasattr(record, key)
            ]
            self._send(*fields)
        except Exception:
            self.handleError(record)


def setup_logging(level: str) -> None:
    root = logging.getLogger()
    root.setLevel(level.upper())
    if Path("/run/systemd/journal/socket").exists():
        handler: logging.Handler = JournalHandler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers[:] = [handler]


async def run(config: Config) -> int:
    # Before any session starts: their ReadWritePaths= name it, and a missing one fails them.
    ensure_scratch(config.shared)
    manager = await SessionManager.create(config)
    sock = listening_socket(config)
    app = build_daemon_app(manager)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=PeerCredentialsProtocol,
            lifespan="off",
            log_config=None,
            access_log=False,
            ws="none",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
    )

    async def ready() -> None:
        while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
            await asyncio.sleep(0.01)
        log.info("hostd is ready on %s", sock.getsockname() or "the activated socket")
        notify("READY=1", "STATUS=serving")

    async def watchdog(interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            notify("WATCHDOG=1")  # from the event loop: a stalled loop misses it, as it should

    ready_task = asyncio.create_task(ready())
    trim_task = asyncio.create_task(trim_heap_forever())  # RSS back after bursts (heap.py)
    watchdog_usec = os.environ.get("WATCHDOG_USEC", "")
    watchdog_task = (
        asyncio.create_task(watchdog(int(watchdog_usec) / 2e6)) if watchdog_usec.isdigit() else None
    )
    try:
        await server.serve(sockets=[sock])
    finally:
        notify("STOPPING=1")
        ready_task.cancel()
        trim_task.cancel()
        if watchdog_task is not None:
            watchdog_task.cancel()
        await manager.close()
        sock.close()
    return 0


def serve(config: Config) -> int:
    setup_logging(config.daemon.log_level)
    if os.geteuid() != 0:
        print("hostd: serve must run as root (it starts units as other users)", file=sys.stderr)
        return 1
    return asyncio.run(run(config))
