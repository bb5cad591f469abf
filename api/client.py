"""The async client of the daemon's local API, over its Unix socket (api layer).

Answers come back as hostd.units.values; an error body is raised as the hostd.units.errors class
of its code; a daemon that cannot be talked to is DaemonUnreachable. What crosses the socket,
both ways, is hostd.api.wire's: this module only moves it (through hostd.api.client_transport:
HTTP/1.1 parsed by llhttp; httpx only for a transport the caller hands in), and loads no server
framework. The socket is opened on the first request, never in the constructor.

    async with HostdClient("/run/hostd/hostd.sock") as hostd:
        result = await hostd.start("alice", mem_limit="2G")
"""

from __future__ import annotations

import builtins
import json
from collections.abc import AsyncGenerator, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar
from urllib.parse import quote, urlencode

from hostd.api.client_transport import (
    Exchange,
    HttpxExchange,
    Reply,
    StreamReply,
    Timeouts,
    TransportFailure,
    UnixSocketExchange,
)
from hostd.api.wire import (
    DaemonUnreachable,
    account_from_body,
    announcement_body,
    auth_from_body,
    credentials_body,
    drain_body,
    error_from_body,
    health_from_body,
    host_from_dict,
    host_history_from_body,
    limits_body,
    line_from_ndjson,
    lines_from_body,
    maintenance_from_body,
    policy_from_dict,
    session_from_body,
    sessions_from_body,
    start_body,
    token_from_body,
    usage_from_dict,
    usage_history_from_body,
)
from hostd.units.choices import ProfileView, profiles_from_body
from hostd.units.errors import HostdError
from hostd.units.history import DEFAULT_WINDOW, HostHistoryView, UsageHistoryView
from hostd.units.maintenance import Drain, MaintenanceView
from hostd.units.values import (
    AccountView,
    AuthResult,
    HostView,
    LogLine,
    PolicyView,
    SessionView,
    StartOutcome,
    UsageView,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AUTH_TIMEOUT",
    "DEFAULT_SOCKET",
    "DEFAULT_TIMEOUT",
    "FOLLOW_TIMEOUT",
    "START_TIMEOUT",
    "DaemonUnreachable",
    "HostdClient",
    "StartResult",
]

DEFAULT_SOCKET: Final = "/run/hostd/hostd.sock"
DEFAULT_TIMEOUT: Final = Timeouts(connect=30.0, read=30.0)
# A start with wait answers once the server answers or failed: up to about 120 s.
START_TIMEOUT: Final = Timeouts(connect=30.0, read=150.0)
# A follow waits for lines as long as the session lives.
FOLLOW_TIMEOUT: Final = Timeouts(connect=30.0, read=None)
# A login waits its turn behind other logins of the same name, each up to PAM's 10 s.
AUTH_TIMEOUT: Final = Timeouts(connect=30.0, read=60.0)

_T = TypeVar("_T")

# What a start did: the session, and whether this call created it (HTTP 201) or it was
# already running (200). The same value the daemon's SessionService.start returns.
StartResult = StartOutcome


def _malformed(response: Reply | StreamReply, exc: Exception) -> HostdError:
    return HostdError(
        f"hostd answered {response.method} {response.path} "
        f"with HTTP {response.status_code} and a body this client cannot read ({exc})"
    )


def _error_of(response: Reply) -> HostdError:
    """The error an error response stands for; HostdError if its body is not an error body."""
    try:
        return error_from_body(response.json())
    except (ValueError, KeyError, TypeError) as exc:
        return _malformed(response, exc)


def _target(path: str, params: Mapping[str, str] | None) -> str:
    return f"{path}?{urlencode(params)}" if params else path


class HostdClient:
    """The daemon's API as async methods; each raises hostd.units.errors (or DaemonUnreachable)."""

    def __init__(
        self,
        socket_path: str = DEFAULT_SOCKET,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.socket_path = socket_path
        self._transport = transport  # an httpx transport (the tests'), else the socket
        self._exchange: Exchange | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._exchange is not None:
            await self._exchange.aclose()
            self._exchange = None

    def _client(self) -> Exchange:
        if self._exchange is None:
            self._exchange = (
                UnixSocketExchange(self.socket_path)
                if self._transport is None
                else HttpxExchange(self._transport)
            )
        return self._exchange

    def _unreachable(self, exc: TransportFailure) -> DaemonUnreachable:
        where = f"hostd at {self.socket_path}"
        if exc.kind == "connect":
            message = f"cannot connect to {where}: {exc.reason}"
        elif exc.kind == "timeout":
            message = f"{where} did not answer in time ({exc.detail or 'Timeout'})"
        else:
            message = f"lost the connection to {where}: {exc.reason}"
        return DaemonUnreachable(message, socket_path=self.socket_path)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUT,
    ) -> Reply:
        content = None if body is None else json.dumps(body).encode()
        try:
            response = await self._client().request(
                method, _target(path, params), content, timeouts
            )
        except TransportFailure as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            raise _error_of(response)
        return response

    @staticmethod
    def _read(response: Reply, read: Callable[[object], _T]) -> _T:
        """``read`` (a reader of hostd.api.wire) of the response's JSON; a HostdError if the
        body is not what the contract says."""
        try:
            return read(response.json())
        except (KeyError, TypeError, ValueError) as exc:
            raise _malformed(response, exc) from exc

    @staticmethod
    def _view(response: Reply) -> SessionView:
        return HostdClient._read(response, session_from_body)

    @staticmethod
    def _session_path(user: str) -> str:
        return f"/v1/sessions/{quote(user, safe='')}"

    async def start(
        self,
        user: str,
        *,
        mem_limit: str | int | None = None,
        cpu_limit: float | str | None = None,
        environment: Mapping[str, str] | None = None,
        default_url: str | None = None,
        wait: bool = True,
        command: str | None = None,
        secrets: Mapping[str, str] | None = None,
        profile: str | None = None,
        server: str = "",
    ) -> StartResult:
        """Start ``user``'s session (idempotently); with ``wait``, once it answers or failed.
        ``server``: a named server's name ("" the default server), here and below."""
        body = start_body(
            mem_limit=mem_limit,
            cpu_limit=cpu_limit,
            environment=environment,
            default_url=default_url,
            command=command,
            secrets=secrets,
            profile=profile,
        )
        response = await self._request(
            "POST",
            self._session_path(user),
            params=_server_params(server, {} if wait else {"wait": "false"}),
            body=body,
            timeouts=START_TIMEOUT if wait else DEFAULT_TIMEOUT,
        )
        session = self._view(response)
        return StartResult(session=session, created=response.status_code == 201)

    async def stop(self, user: str, *, server: str = "") -> SessionView:
        """Stop ``user``'s session (idempotently); the final view."""
        response = await self._request(
            "DELETE", self._session_path(user), params=_server_params(server)
        )
        return self._view(response)

    async def get(self, user: str, *, server: str = "") -> SessionView:
        response = await self._request(
            "GET", self._session_path(user), params=_server_params(server)
        )
        return self._view(response)

    async def list(self) -> builtins.list[SessionView]:
        response = await self._request("GET", "/v1/sessions")
        return self._read(response, sessions_from_body)

    async def logs(
        self, user: str, *, lines: int = 100, server: str = ""
    ) -> builtins.list[LogLine]:
        """The last ``lines`` log lines of ``user``'s session."""
        response = await self._request(
            "GET",
            f"{self._session_path(user)}/logs",
            params=_server_params(server, {"lines": str(lines)}),
        )
        return self._read(response, lines_from_body)

    async def follow(
        self, user: str, *, cursor: str | None = None, server: str = ""
    ) -> AsyncGenerator[LogLine, None]:
        """Log lines of ``user``'s session as they come, until the caller stops iterating.

        An async generator: close it (contextlib.aclosing) to end the stream at once.
        """
        params = {"follow": "true"}
        if cursor is not None:
            params["cursor"] = cursor
        if server:
            params["server"] = server
        path = f"{self._session_path(user)}/logs"
        try:
            async with self._client().stream(
                "GET", _target(path, params), FOLLOW_TIMEOUT
            ) as response:
                if response.status_code >= 400:
                    raise _error_of(await response.read())
                async for text in response.lines():
                    if text.strip():
                        yield self._log_line(response, text)
        except TransportFailure as exc:
            raise self._unreachable(exc) from exc

    @staticmethod
    def _log_line(response: StreamReply, text: str) -> LogLine:
        """A line of the stream; the error of a last line that stands for one is raised."""
        try:
            return line_from_ndjson(text)
        except (KeyError, TypeError, ValueError) as exc:
            raise _malformed(response, exc) from exc

    async def set_limits(
        self,
        user: str,
        *,
        mem_limit: str | int | None = None,
        cpu_limit: float | str | None = None,
    ) -> SessionView:
        """Change the limits of ``user``'s running session live (admins only); None leaves a
        limit as it is, and the daemon refuses a call that changes neither (InvalidOption)."""
        response = await self._request(
            "PATCH",
            self._session_path(user),
            body=limits_body(mem_limit=mem_limit, cpu_limit=cpu_limit),
        )
        return self._view(response)

    async def usage(self, user: str, *, server: str = "") -> UsageView:
        """What ``user``'s starting or running session uses now."""
        response = await self._request(
            "GET", f"{self._session_path(user)}/usage", params=_server_params(server)
        )
        return self._read(response, usage_from_dict)

    async def usage_history(self, user: str, *, window: str = DEFAULT_WINDOW) -> UsageHistoryView:
        """What ``user``'s session used over the window (1h: 10 s points; 24h: 5 min)."""
        response = await self._request(
            "GET", f"{self._session_path(user)}/usage/history", params={"window": window}
        )
        return self._read(response, usage_history_from_body)

    async def token(self, user: str, *, server: str = "") -> str:
        """The running session's Jupyter token (for a proxy that adds it to requests)."""
        response = await self._request(
            "GET", f"{self._session_path(user)}/token", params=_server_params(server)
        )
        try:
            return token_from_body(response.json())
        except (KeyError, TypeError, ValueError):
            raise HostdError("hostd answered without a token") from None

    async def activity(self, user: str, *, server: str = "") -> None:
        """Tell the daemon ``user`` was active just now (restarts the session's idle clock)."""
        await self._request(
            "POST", f"{self._session_path(user)}/activity", params=_server_params(server)
        )

    async def authenticate(self, username: str, password: str) -> AuthResult:
        """Check a password with the daemon's PAM: the account's name as the database spells
        it and whether it is an admin. Raises LoginFailed (wrong password, unknown or refused
        account: one message for all), LockedOut (retry_after_s), InvalidName (username) or
        InvalidInput (password: empty, over 1024 characters, NUL)."""
        response = await self._request(
            "POST",
            "/v1/auth",
            body=credentials_body(username, password),
            timeouts=AUTH_TIMEOUT,
        )
        return self._read(response, auth_from_body)

    async def account(self, user: str) -> AccountView:
        """Whether ``user``'s account may have a session now (the account policy, PAM's account
        management, a locked password), its uid and whether it is an admin. Raises
        AccountDisabled (locked, expired), UserRefused, UnknownUser, AccountUnchecked."""
        response = await self._request(
            "GET", f"/v1/accounts/{quote(user, safe='')}", timeouts=AUTH_TIMEOUT
        )
        return self._read(response, account_from_body)

    async def profiles(self, user: str) -> builtins.list[ProfileView]:
        """The [[profile_list]] choices ``user`` may take, with their limits ([] when none)."""
        response = await self._request("GET", f"/v1/accounts/{quote(user, safe='')}/profiles")
        return self._read(response, profiles_from_body)

    async def host(self) -> HostView:
        response = await self._request("GET", "/v1/host")
        return self._read(response, host_from_dict)

    async def host_history(self, *, window: str = DEFAULT_WINDOW) -> HostHistoryView:
        """The memory promised to sessions against the host's capacity over the window."""
        response = await self._request("GET", "/v1/host/history", params={"window": window})
        return self._read(response, host_history_from_body)

    async def metrics(self) -> str:
        """The daemon's Prometheus exposition, as text."""
        response = await self._request("GET", "/metrics")
        return response.text

    async def health(self) -> dict[str, Any]:
        response = await self._request("GET", "/v1/health")
        return self._read(response, health_from_body)

    async def policy(self) -> PolicyView:
        """The admin's sandbox, [commands] names and [session] limits, that a caller (the
        spawner) must agree with; any member of the socket's group may read it."""
        response = await self._request("GET", "/v1/policy")
        return self._read(response, policy_from_dict)

    async def maintenance(self) -> MaintenanceView:
        """The admin's announcement and drain; any member of the socket's group may read it."""
        response = await self._request("GET", "/v1/maintenance")
        return self._read(response, maintenance_from_body)

    async def announce(self, message: str | None) -> MaintenanceView:
        """Show ``message`` on every hub page (None: clear it); root only."""
        if message is None:
            response = await self._request("DELETE", "/v1/maintenance/announcement")
        else:
            response = await self._request(
                "PUT", "/v1/maintenance/announcement", body=announcement_body(message)
            )
        return self._read(response, maintenance_from_body)

    async def drain(self, drain: Drain | None) -> MaintenanceView:
        """Refuse starts and stop every session at ``drain.at`` (None: cancel); root only."""
        if drain is None:
            response = await self._request("DELETE", "/v1/maintenance/drain")
        else:
            response = await self._request("PUT", "/v1/maintenance/drain", body=drain_body(drain))
        return self._read(response, maintenance_from_body)


def _server_params(server: str, params: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The query of a request about one server: ``server`` only for a named one, so a default
    server's requests are what they always were."""
    merged = dict(params or {})
    if server:
        merged["server"] = server
    return merged or None
