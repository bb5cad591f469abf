"""Where each user's server answers, and whether a connection really reached it (api layer).

``Routes`` caches, per user, the daemon's URL and token for the running server (ROUTE_TTL_S;
one daemon lookup at a time per user; dropped when the hub starts or stops that server, the
upstream refuses connections, or the daemon says the session ended or is another invocation:
a route older than REVALIDATE_S is checked against the daemon in the background), so most
proxied requests cost no call to the daemon.

A server listens on a Unix socket (``http+unix://`` from the daemon: the default) or on a
loopback port (an admin's {PORT} cmd). Every new connection to a server is checked before a
byte is sent (hostd.api.hub.peer): the server end must be owned by the account of the user
whose route is used (the route's own uid). A port on 127.0.0.1 is anyone's to bind once the
session that had it is gone, and the hub sends the session's token with every request. Nothing
is keyed by port alone: two routes may name one port (one of them stale), so connections are
pooled per (uid, host, port, socket) and each pool checks against its own uid
(hostd.api.hub.upstream, the proxy's HTTP client); ``checked_socket`` does the same for a
WebSocket. ``Activity`` reports
users' activity to the daemon at most once per interval.
"""

from __future__ import annotations

import asyncio
import logging
import pwd
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit

from hostd.api.client import HostdClient
from hostd.api.hub.db import HubStore
from hostd.api.hub.peer import WrongPeer, peer_uid
from hostd.units.errors import HostdError, SessionNotFound
from hostd.units.servers import session_key, split_session_key

__all__ = [
    "REVALIDATE_S",
    "ROUTE_TTL_S",
    "SOCKET_ORIGIN",
    "Activity",
    "Route",
    "Routes",
    "account_uid",
    "check_peer",
    "checked_socket",
]

log = logging.getLogger(__name__)

ROUTE_TTL_S: Final = 60.0
# A route older than this is checked against the daemon (in the background) at its next use:
# a session that ended, or started again, outside the hub is noticed within seconds.
REVALIDATE_S: Final = 5.0
SOCKET_ORIGIN: Final = "http://localhost"
UNIX_SCHEME: Final = "http+unix"
NEGATIVE_TTL_S: Final = 2.0  # a stopped server is asked about at most this often
CONNECT_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class Route:
    """Where a user's server answers: ``origin`` as the daemon gives it (http://127.0.0.1:PORT,
    or http+unix://<socket path, percent-encoded>), the Unix socket's path for a server on one,
    its token, the uid that must own the server's socket (hostd.api.hub.peer), and which run of
    the session it is (``started_at``: a new invocation starts at another time)."""

    origin: str
    host: str
    port: int
    token: str
    uid: int
    fetched: float
    started_at: str | None = None
    socket: str | None = None

    @property
    def http_origin(self) -> str:
        """The origin requests are sent to: over a Unix socket, http://localhost (the Host a
        server on a socket expects), the connection going to ``socket``."""
        return SOCKET_ORIGIN if self.socket is not None else self.origin


def account_uid(user: str) -> int:
    """The user's uid from the account database (NSS; no privilege needed)."""
    return pwd.getpwnam(user).pw_uid


class Routes:
    """The route to each running server, cached; one daemon lookup at a time per server. A
    server is named by its key: the user name, or user:server for a named server."""

    def __init__(
        self,
        daemon: HostdClient,
        *,
        ttl_s: float = ROUTE_TTL_S,
        revalidate_s: float = REVALIDATE_S,
        uid_of: Callable[[str], int] = account_uid,
    ) -> None:
        self.daemon = daemon
        self.ttl_s = ttl_s
        self.revalidate_s = revalidate_s
        self.uid_of = uid_of
        self._routes: dict[str, Route | None] = {}
        self._checked: dict[str, float] = {}
        self._lookups: dict[str, asyncio.Future[Route | None]] = {}
        self._revalidations: dict[str, asyncio.Task[None]] = {}
        self._named_limit: tuple[int, float] | None = None  # (the policy's, when read)

    async def named_servers_on(self) -> bool:
        """Whether the daemon's [session] named_server_limit is above 0 (read at most once a
        ROUTE_TTL_S): only then may /user/<name>/<segment>/ be a named server's."""
        now = time.monotonic()
        if self._named_limit is None or now - self._named_limit[1] >= self.ttl_s:
            try:
                limit = (await self.daemon.policy()).named_server_limit
            except HostdError as exc:
                log.info("could not read the daemon's policy: %s", exc.message)
                limit = 0 if self._named_limit is None else self._named_limit[0]
            self._named_limit = (limit, now)
        return self._named_limit[0] > 0

    async def key_for(self, user: str, rest: bytes) -> str:
        """Which of ``user``'s servers /user/<user><rest> is for: the named server whose name
        is rest's first segment when that one runs (as JupyterHub routes /user/<name>/<server>/),
        else the default server (its key, the user name)."""
        segment = rest[1:].split(b"/", 1)[0]
        if not segment or not await self.named_servers_on():
            return user
        try:
            key = session_key(user, segment.decode("ascii"))
        except (HostdError, UnicodeDecodeError):
            return user  # not a server name: a path of the default server
        return key if await self.get(key) is not None else user

    async def get(self, user: str) -> Route | None:
        """The route to ``user``'s running server, or None when it is not running."""
        now = time.monotonic()
        if user in self._routes:
            route = self._routes[user]
            age = now - self._checked[user]
            if age < (self.ttl_s if route is not None else NEGATIVE_TTL_S):
                if route is not None and age >= self.revalidate_s:
                    self._revalidate(user, route)
                return route
        lookup = self._lookups.get(user)
        if lookup is None:
            lookup = asyncio.ensure_future(self._lookup(user))
            self._lookups[user] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(user, None))
        return await asyncio.shield(lookup)

    def _revalidate(self, user: str, route: Route) -> None:
        """Ask the daemon, without holding up the request, whether ``route`` is still the
        session it names; forget it if the session ended or is another invocation."""
        if user in self._revalidations or user in self._lookups:
            return
        task = asyncio.create_task(self._check(user, route), name=f"route {user}")
        self._revalidations[user] = task
        task.add_done_callback(lambda _: self._revalidations.pop(user, None))

    async def _check(self, user: str, route: Route) -> None:
        try:
            name, named = _named(user)
            view = await self.daemon.get(name, **named)
        except SessionNotFound:
            view = None
        except HostdError as exc:  # the daemon is restarting, say: keep the route for now
            log.info("could not check %s's route: %s", user, exc.message)
            return
        if self._routes.get(user) is not route:
            return  # replaced or forgotten meanwhile
        started = view.started_at.isoformat() if view and view.started_at else None
        same = (
            view is not None
            and view.state == "running"
            and _origin(view.url) == route.origin
            and started == route.started_at
        )
        if not same:
            log.info("%s's session ended or started again: forgetting its route", user)
            self.forget(user)
            return
        # The same run of the session: as good as a new lookup (its token is the same).
        self._checked[user] = time.monotonic()

    async def _lookup(self, user: str) -> Route | None:
        route: Route | None = None
        try:
            name, named = _named(user)
            view = await self.daemon.get(name, **named)
            if view.state == "running" and view.url:
                parts = urlsplit(view.url)
                on_socket = parts.scheme == UNIX_SCHEME
                route = Route(
                    origin=f"{parts.scheme}://{parts.netloc}",
                    host="localhost" if on_socket else parts.hostname or "127.0.0.1",
                    port=80 if on_socket else parts.port or 80,
                    socket=unquote(parts.netloc) if on_socket else None,
                    token=await self.daemon.token(name, **named),
                    uid=await asyncio.to_thread(self.uid_of, name),
                    fetched=time.monotonic(),
                    started_at=view.started_at.isoformat() if view.started_at else None,
                )
        except SessionNotFound:
            route = None
        except KeyError:  # no such account any more
            log.warning("%s has a server but no account: not forwarding to it", user)
            route = None
        self._routes[user] = route
        self._checked[user] = time.monotonic()
        return route

    def forget(self, user: str) -> None:
        self._routes.pop(user, None)
        self._checked.pop(user, None)

    async def aclose(self) -> None:
        tasks = list(self._revalidations.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _named(key: str) -> tuple[str, dict[str, str]]:
    """The daemon's user and server arguments of a route's key (user, or user:server)."""
    user, server = split_session_key(key)
    return user, ({"server": server} if server else {})


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def check_peer(sock: socket.socket, expected_uid: int | None) -> None:
    """WrongPeer unless the server end of ``sock`` is owned by ``expected_uid``."""
    owner = peer_uid(sock)
    if expected_uid is None or owner != expected_uid:
        peer = sock.getpeername()
        where = f"socket {peer}" if sock.family == socket.AF_UNIX else f"port {peer[1]}"
        raise WrongPeer(
            f"the server on {where} belongs to uid {owner}, "
            f"not {expected_uid}: not sending it anything"
        )


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
        name, named = _named(user)  # user: a server's key (user, or user:server)
        try:
            await self.daemon.activity(name, **named)
        except SessionNotFound:
            self.routes.forget(user)
        except HostdError as exc:
            log.warning("could not report %s's activity: %s", user, exc.message)
        await asyncio.to_thread(self.store.touch_activity, name)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def checked_socket(route: Route) -> socket.socket:
    """A connection to the route's server (its Unix socket, or TCP), checked (check_peer)
    before anything is sent."""
    if route.socket is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: str | tuple[str, int] = route.socket
    else:
        family = socket.AF_INET6 if ":" in route.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        address = (route.host, route.port)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await asyncio.get_running_loop().sock_connect(sock, address)
        if route.socket is not None:
            check_peer(sock, route.uid)  # SO_PEERCRED: one system call
        else:
            await asyncio.to_thread(check_peer, sock, route.uid)
    except BaseException:
        sock.close()
        raise
    return sock
