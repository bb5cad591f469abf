"""Where each user's server answers, and whether a connection really reached it (api layer).

``Routes`` caches, per user, the daemon's URL and token for the running server (ROUTE_TTL_S;
one daemon lookup at a time per user; dropped when the hub starts or stops that server or
the upstream refuses connections), so most proxied requests cost no call to the daemon.

Every new connection to a server is checked before a byte is sent (hostd.api.hub.peer): the server
end must be owned by the user's account. A port on 127.0.0.1 is anyone's to bind once the
session that had it is gone, and the hub sends the session's token with every request.
``upstream_transport`` is the proxy's one pooled HTTP transport, with that check built into its
connection pool; ``checked_socket`` does the same for a WebSocket. ``Activity`` reports
users' activity to the daemon at most once per interval.
"""

from __future__ import annotations

import asyncio
import logging
import pwd
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpcore
import httpx

from hostd.api.client import HostdClient
from hostd.api.hub.db import HubStore
from hostd.api.hub.peer import WrongPeer, peer_uid
from hostd.units.errors import HostdError, SessionNotFound

__all__ = [
    "ROUTE_TTL_S",
    "UPSTREAM_TIMEOUT",
    "Activity",
    "Route",
    "Routes",
    "account_uid",
    "check_peer",
    "checked_socket",
    "upstream_transport",
]

log = logging.getLogger(__name__)

ROUTE_TTL_S: Final = 60.0
NEGATIVE_TTL_S: Final = 2.0  # a stopped server is asked about at most this often
UPSTREAM_TIMEOUT: Final = httpx.Timeout(10.0, read=300.0, write=60.0)
CONNECT_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class Route:
    """Where a user's server answers: ``origin`` (http://127.0.0.1:PORT), its token, and the
    uid that must own the server's socket (hostd.api.hub.peer)."""

    origin: str
    host: str
    port: int
    token: str
    uid: int
    fetched: float


def account_uid(user: str) -> int:
    """The user's uid from the account database (NSS; no privilege needed)."""
    return pwd.getpwnam(user).pw_uid


class Routes:
    """The route to each running server, cached; one daemon lookup at a time per user."""

    def __init__(
        self,
        daemon: HostdClient,
        *,
        ttl_s: float = ROUTE_TTL_S,
        uid_of: Callable[[str], int] = account_uid,
    ) -> None:
        self.daemon = daemon
        self.ttl_s = ttl_s
        self.uid_of = uid_of
        self._routes: dict[str, Route | None] = {}
        self._uid_by_port: dict[int, int] = {}
        self._checked: dict[str, float] = {}
        self._lookups: dict[str, asyncio.Future[Route | None]] = {}

    async def get(self, user: str) -> Route | None:
        """The route to ``user``'s running server, or None when it is not running."""
        now = time.monotonic()
        if user in self._routes:
            route = self._routes[user]
            if now - self._checked[user] < (self.ttl_s if route is not None else NEGATIVE_TTL_S):
                return route
        lookup = self._lookups.get(user)
        if lookup is None:
            lookup = asyncio.ensure_future(self._lookup(user))
            self._lookups[user] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(user, None))
        return await asyncio.shield(lookup)

    async def _lookup(self, user: str) -> Route | None:
        route: Route | None = None
        try:
            view = await self.daemon.get(user)
            if view.state == "running" and view.url:
                parts = urlsplit(view.url)
                route = Route(
                    origin=f"{parts.scheme}://{parts.netloc}",
                    host=parts.hostname or "127.0.0.1",
                    port=parts.port or 80,
                    token=await self.daemon.token(user),
                    uid=await asyncio.to_thread(self.uid_of, user),
                    fetched=time.monotonic(),
                )
        except SessionNotFound:
            route = None
        except KeyError:  # no such account any more
            log.warning("%s has a server but no account: not forwarding to it", user)
            route = None
        old = self._routes.get(user)
        if old is not None:
            self._uid_by_port.pop(old.port, None)
        if route is not None:
            self._uid_by_port[route.port] = route.uid
        self._routes[user] = route
        self._checked[user] = time.monotonic()
        return route

    def forget(self, user: str) -> None:
        route = self._routes.pop(user, None)
        if route is not None:
            self._uid_by_port.pop(route.port, None)
        self._checked.pop(user, None)

    def uid_for_port(self, port: int) -> int | None:
        """Whose server a route says listens on ``port`` (None: no route has it)."""
        return self._uid_by_port.get(port)


def check_peer(sock: socket.socket, expected_uid: int | None) -> None:
    """WrongPeer unless the server end of ``sock`` is owned by ``expected_uid``."""
    owner = peer_uid(sock)
    if expected_uid is None or owner != expected_uid:
        raise WrongPeer(
            f"the server on port {sock.getpeername()[1]} belongs to uid {owner}, "
            f"not {expected_uid}: not sending it anything"
        )


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, checking each new connection's peer before it is used."""

    def __init__(self, routes: Routes) -> None:
        self.routes = routes
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            # In a thread: the kernel takes milliseconds to print the socket table
            # (hostd.api.hub.peer), and the event loop serves every other request meanwhile.
            sock = stream.get_extra_info("socket")
            await asyncio.to_thread(check_peer, sock, self.routes.uid_for_port(port))
        except OSError as exc:
            await stream.aclose()
            raise httpcore.ConnectError(str(exc)) from exc
        return stream

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the proxy forwards over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a pool whose connections are checked (_CheckedBackend)."""

    def __init__(
        self, routes: Routes, limits: httpx.Limits, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(limits=limits, trust_env=False, verify=tls or True)
        # httpx takes no network backend; the httpcore pool under it does.
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedBackend(routes),
        )


class _PoolPerServer(httpx.AsyncBaseTransport):
    """A checked pool (_CheckedTransport) for each user's server, made on first use.

    One pool for all servers was slow: httpcore matches every waiting request against every
    connection in its pool, each time one is freed, so with 100 users' servers the proxy spent
    its time in that scan (measured: half its CPU, a p50 of a second at 50 requests at once).
    Fewer kept-alive connections than servers was no better: a new connection, and a peer
    check, for almost every request. A pool per server keeps both small.
    """

    def __init__(self, routes: Routes, limits: httpx.Limits) -> None:
        self.routes = routes
        self.limits = limits
        # One for all: httpx loads the CA bundle for each transport it makes (0.1 s, measured).
        self.tls = ssl.create_default_context()
        self._pools: dict[tuple[str, int | None], _CheckedTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        server = (request.url.host, request.url.port)
        pool = self._pools.get(server)
        if pool is None:
            pool = self._pools[server] = _CheckedTransport(self.routes, self.limits, self.tls)
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


class Activity:
    """Reports users' activity to the daemon (its idle clock), at most once per interval."""

    def __init__(
        self, daemon: HostdClient, store: HubStore, routes: Routes, *, interval_s: float
    ) -> None:
        self.daemon = daemon
        self.store = store
        self.routes = routes
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def seen(self, user: str) -> None:
        now = time.monotonic()
        last = self._last.get(user)
        if last is not None and now - last < self.interval_s:
            return
        self._last[user] = now
        task = asyncio.create_task(self._report(user), name=f"activity {user}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, user: str) -> None:
        try:
            await self.daemon.activity(user)
        except SessionNotFound:
            self.routes.forget(user)
        except HostdError as exc:
            log.warning("could not report %s's activity: %s", user, exc.message)
        await asyncio.to_thread(self.store.touch_activity, user)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def upstream_transport(routes: Routes) -> httpx.AsyncBaseTransport:
    """The one transport for every forwarded request: pooled keep-alive connections, a pool
    per user's server (_PoolPerServer), each connection checked once, when made, to end at the
    right user's server. A transport, not a client: a client keeps a cookie jar, and one jar
    for every user would carry the cookies alice's server set to bob's server."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)  # per server
    return _PoolPerServer(routes, limits)


async def checked_socket(route: Route) -> socket.socket:
    """A TCP connection to the route's server, checked (check_peer) before anything is sent."""
    family = socket.AF_INET6 if ":" in route.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await asyncio.get_running_loop().sock_connect(sock, (route.host, route.port))
        await asyncio.to_thread(check_peer, sock, route.uid)
    except BaseException:
        sock.close()
        raise
    return sock
