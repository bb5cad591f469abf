"""Serving the hub: files, database, the daemon's client, uvicorn (api layer; the hub's only
start-up I/O, in one place).

``serve(config)`` makes what the app needs (the state directory's files under umask 077, the
database, created or upgraded, the cookie key), checks that the process holds no more than it
should, and runs uvicorn until SIGTERM or SIGINT (graceful shutdown, bounded).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import uvicorn
import uvloop
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request as WebSocketRequest

from hostd.api.client import DaemonUnreachable, HostdClient
from hostd.api.hub.app import build_hub_app
from hostd.api.hub.db import HubStore
from hostd.api.hub.listeners import serve_with_acme
from hostd.api.hub.security import Secret, load_or_create_secret
from hostd.api.hub.settings import HubConfig
from hostd.api.hub.wsrelay import RELAY_EXTENSION, RELAY_MESSAGE, Relay, Upgraded
from hostd.units.errors import HostdError

if TYPE_CHECKING:
    from uvicorn._types import ASGISendEvent

__all__ = ["SHADOW", "HubWebSocketProtocol", "StartupError", "prepare", "serve", "uvicorn_config"]

log = logging.getLogger("hostd.hub")

SHADOW: Final = Path("/etc/shadow")
GRACEFUL_SHUTDOWN_S: Final = 10


class StartupError(Exception):
    """Something the admin must fix before the hub can start; the message says what."""


def prepare(config: HubConfig) -> tuple[HubStore, Secret]:
    """The database (made or upgraded) and the cookie key (made at the first start)."""
    os.umask(0o077)  # the database and the key: the hub's user only
    state = config.state_dir
    try:
        state.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise StartupError(
            f"cannot make the state directory {state}: {exc.strerror} "
            "(the installer makes it, owned by the hub's user)"
        ) from exc
    try:
        secret = load_or_create_secret(config.cookie_secret_path)
    except (OSError, ValueError) as exc:
        raise StartupError(f"cookie secret {config.cookie_secret_path}: {exc}") from exc
    try:
        store = HubStore.open(config.database_url)
    except Exception as exc:  # sqlite3's errors, a URL not sqlite, a failed upgrade
        # Another scheme's URL may hold a password: named by its setting then.
        url = config.database_url
        where = url if url.startswith("sqlite:") else "db_url"
        raise StartupError(f"database {where}: {exc}") from exc
    return store, secret


class HubWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, with two changes.

    The relay (hostd.api.hub.wsrelay): each upgrade's scope offers the ASGI extension
    ``RELAY_EXTENSION``; an app that sends ``RELAY_MESSAGE`` instead of ``websocket.accept``
    hands the browser's connection to a byte relay with the user's server (the server's 101
    goes to the browser), and that send returns once both connections are closed.

    A handshake that websockets refuses to parse (a request line over 8 KiB: 414; headers
    too large: 431; not HTTP: 400) gets that answer and is closed. uvicorn 0.54 leaves the
    answer unsent and the connection open, silent, until the client gives up (found by
    tests/api/hub/test_fuzz.py)."""

    relay: Relay | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if (
            self.conn.handshake_exc is not None
            and not self.handshake_initiated
            and not self.transport.is_closing()
        ):
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()

    def handle_connect(self, event: WebSocketRequest) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:  # the app is called: its scope offers the relay
            self.scope["extensions"][RELAY_EXTENSION] = {}

    async def send(self, message: ASGISendEvent) -> None:
        # Not one of uvicorn's typed messages: an extension's, read as a plain dict.
        sent = cast(dict[str, Any], message)
        if sent["type"] == RELAY_MESSAGE:
            await self._relay(sent)
        else:
            await super().send(message)

    async def _relay(self, message: dict[str, Any]) -> None:
        upgraded: Upgraded = message["upgraded"]
        if self.handshake_complete or self.disconnected or self.transport.is_closing():
            upgraded.transport.close()
            if self.disconnected or self.transport.is_closing():
                return  # the browser left while the server was asked
            raise RuntimeError("a WebSocket relay asked for after the handshake")
        # uvicorn's own frames end here: from now on the transport is the relay's.
        self.handshake_complete = True
        self.close_sent = True
        self.relay = Relay(self.transport, upgraded, activity=message["activity"])
        self.relay.start(message["head"])
        try:
            await asyncio.shield(self.relay.finished)
        except asyncio.CancelledError:
            self.relay.abort()
            raise
        finally:
            # This protocol no longer sees connection_lost: it leaves uvicorn's list here.
            self.disconnected = True
            self.connections.discard(self)

    def shutdown(self) -> None:
        if self.relay is not None:
            self.relay.shutdown()
            return
        super().shutdown()


def uvicorn_config(config: HubConfig, app: object) -> uvicorn.Config:
    # ACME mode: one file holds the key and the chain (hostd.api.hub.acme), read at load().
    certfile = config.ssl_cert
    if config.acme:
        # Imported here: certbot's acme and cryptography are ~15 MiB of RSS that a hub without
        # ACME never needs (issue 17).
        from hostd.api.hub.acme import CERT_FILE

        certfile = config.acme_dir / CERT_FILE
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=config.ip,
        port=config.port,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(config.ssl_key) if config.ssl_key else None,
        # C parsers and event loop: h11 (pure Python) parsed every request the hub serves, a
        # sixth of its CPU per proxied small request; httptools and uvloop together gave the
        # proxy 1.6x its requests/s (README, Benchmarks: the profile and the command).
        http="httptools",
        loop="uvloop",
        ws=HubWebSocketProtocol,
        proxy_headers=bool(config.trusted_proxies),
        forwarded_allow_ips=list(config.trusted_proxies) or None,
        server_header=False,
        lifespan="on",
        log_config=None,  # the process's logging (stderr, to the journal under systemd)
        access_log=False,  # a JupyterLab page load is hundreds of requests
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


async def _check_daemon(daemon: HostdClient) -> None:
    try:
        await daemon.health()
    except DaemonUnreachable as exc:
        log.warning("the daemon is not reachable yet (%s); logins fail until it is", exc.message)
    except HostdError as exc:
        log.error(
            "the daemon refused the hub (%s): is this user in the daemon's socket_group?",
            exc.message,
        )


def serve(config: HubConfig) -> int:
    """Run the hub until it is told to stop; the exit status."""
    if os.geteuid() != 0 and os.access(SHADOW, os.R_OK):
        log.warning("this user can read %s: the hub needs no such access", SHADOW)
    store, secret = prepare(config)
    daemon = HostdClient(str(config.hostd_socket))
    app = build_hub_app(config, store=store, secret=secret, daemon=daemon)
    https_config = uvicorn_config(config, app)
    server = uvicorn.Server(https_config)
    scheme = "https" if config.tls else "http"
    log.info("hub on %s://%s:%d", scheme, config.ip or "*", config.port)
    if config.acme:
        log.info(
            "certificate for %s over ACME from %s; HTTP on port %d",
            ", ".join(config.acme_domains),
            config.acme_directory,
            config.http_port,
        )

    async def run() -> int:
        await _check_daemon(daemon)
        if config.acme:
            return await serve_with_acme(config, https_config)
        await server.serve()
        return 0 if server.started else 1

    try:
        # uvloop's event loop (uvicorn's loop= applies only to uvicorn.run, not Server.serve).
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(run())
    finally:
        store.close()
