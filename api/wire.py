"""The daemon's wire contract, for both ends of its socket (api layer: pure; no I/O).

Everything that crosses the socket is defined here, once: the request limits, every error code
and its HTTP status, the JSON of every error body and every value, to and from, and how the
bodies and query parameters of requests are written (client) and read (daemon). The daemon's
HTTP face (hostd.api.daemon) encodes with it, the client (hostd.api.client) decodes with it,
and the hub and the spawner derive their own status tables from ``STATUS_BY_ERROR``.

It imports the standard library and hostd.units only: the client, and through it JupyterHub's
spawner, load it without a server framework (no starlette) and the daemon without a client
one (no httpx).

The daemon answers every failure with one JSON body, ``{"code", "message"[, "details"]}``.
``STATUS_BY_ERROR`` is the one table from error classes to HTTP statuses; ``ERROR_BY_CODE`` is
its reverse, from a body's code to the class the client raises. A few failures are about HTTP
itself, not the domain (a body that is not JSON, no such route): they have codes of their own
here and no class in hostd.units.errors. DaemonUnreachable is the client's own: no body carries
it, but the hub and the spawner pass it on with a status like any other.

Readers (``*_from_dict``, ``*_from_body``) raise KeyError for a missing field, TypeError for a
value of the wrong type and ValueError for one that does not parse; keys they do not know (from
a newer daemon) are left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, TypeVar

from hostd.units import SessionRequest, errors, parse_cpu, parse_size
from hostd.units.errors import (
    AccountDisabled,
    AccountUnchecked,
    CapacityExceeded,
    ConfigError,
    Draining,
    GpusNotConfigured,
    GpusUnavailable,
    HostdError,
    InvalidInput,
    InvalidOption,
    LockedOut,
    LoginFailed,
    PermissionDenied,
    SessionConflict,
    SessionNotFound,
    SpawnFailed,
    SystemdUnavailable,
    TooManyServers,
    UnknownProfile,
    UnknownUser,
    UserRefused,
)
from hostd.units.fields import (
    bool_field,
    float_field,
    int_field,
    json_object,
    optional_float,
    optional_int,
    optional_str,
    str_field,
    strings_field,
)
from hostd.units.history import HistoryWindow, HostHistoryView, UsageHistoryView, window_named
from hostd.units.maintenance import Drain, MaintenanceView, check_message
from hostd.units.names import USERNAME_MAX
from hostd.units.values import (
    PASSWORD_MAX,
    AccountView,
    AuthResult,
    Credentials,
    HostView,
    LogLine,
    PolicyView,
    SessionView,
    UsageView,
)

__all__ = [
    "AUTH_FIELDS",
    "BAD_REQUEST",
    "DRAIN_FIELDS",
    "ERROR_BY_CODE",
    "HTTP_CODES",
    "INTERNAL",
    "INTERNAL_MESSAGE",
    "LIMIT_OPTIONS",
    "LINES_DEFAULT",
    "LINES_MAX",
    "MAINTENANCE_FIELDS",
    "MAX_BODY_BYTES",
    "METHOD_NOT_ALLOWED",
    "NDJSON",
    "PASSWORD_MAX",
    "ROUTE_NOT_FOUND",
    "START_EXTRAS",
    "START_OPTIONS",
    "STATUS_BY_ERROR",
    "USERNAME_MAX",
    "DaemonUnreachable",
    "account_from_body",
    "all_codes",
    "announcement_body",
    "announcement_from_body",
    "auth_from_body",
    "credentials_body",
    "credentials_from_body",
    "drain_body",
    "drain_from_body",
    "empty_from_body",
    "error_body",
    "error_from_body",
    "error_from_wire",
    "health_from_body",
    "host_from_dict",
    "host_history_from_body",
    "http_error_body",
    "limit_changes_from_body",
    "limits_body",
    "line_from_ndjson",
    "lines_body",
    "lines_from_body",
    "maintenance_from_body",
    "ndjson_error_line",
    "ndjson_line",
    "policy_from_dict",
    "policy_to_dict",
    "query_bool",
    "query_int",
    "query_window",
    "request_object",
    "retry_after_headers",
    "session_from_body",
    "sessions_body",
    "sessions_from_body",
    "start_body",
    "start_from_body",
    "start_profile",
    "status_for",
    "token_body",
    "token_from_body",
    "usage_from_dict",
    "usage_history_from_body",
]

# -- request limits -----------------------------------------------------------------------

MAX_BODY_BYTES: Final = 64 * 1024
LINES_DEFAULT: Final = 100  # GET .../logs without ?lines=
LINES_MAX: Final = 10_000
START_OPTIONS: Final = ("mem_limit", "cpu_limit", "environment", "default_url")
# Not SessionRequest fields: the daemon itself handles these (a named command, secret files).
START_EXTRAS: Final = ("command", "secrets", "profile")
LIMIT_OPTIONS: Final = ("mem_limit", "cpu_limit")  # what a PATCH of a session may change
AUTH_FIELDS: Final = ("username", "password")  # the body of POST /v1/auth
# USERNAME_MAX and PASSWORD_MAX (hostd.units) bound the two AUTH_FIELDS as they cross.
NDJSON: Final = "application/x-ndjson"  # a follow of a session's log


# -- errors -------------------------------------------------------------------------------


class DaemonUnreachable(HostdError):
    """Raised by the client when the daemon cannot be talked to: its socket is missing,
    refuses connections or may not be opened, or the connection broke or timed out."""

    code = "daemon-unreachable"

    def __init__(self, message: str, *, socket_path: str) -> None:
        super().__init__(message, details={"socket_path": socket_path})
        self.socket_path = socket_path


# Looked up along the class's MRO, so a subclass maps like its nearest listed ancestor.
STATUS_BY_ERROR: Final[Mapping[type[HostdError], int]] = MappingProxyType(
    {
        InvalidInput: 422,
        UnknownProfile: 422,  # hidden or missing [[profile_list]] slug: the same answer
        LoginFailed: 401,
        LockedOut: 429,  # with Retry-After
        PermissionDenied: 403,
        UserRefused: 403,
        AccountDisabled: 403,
        AccountUnchecked: 503,
        UnknownUser: 404,
        SessionNotFound: 404,
        SessionConflict: 409,
        # Named servers: InvalidServerName ("invalid-server-name") is an InvalidInput, 422.
        TooManyServers: 409,  # [session] named_server_limit reached (or 0: named servers off)
        CapacityExceeded: 429,  # with Retry-After (RFC 9110 §10.2.3)
        GpusUnavailable: 429,  # every GPU held by other sessions; with Retry-After
        GpusNotConfigured: 422,  # more GPUs asked for than [gpus] lists
        Draining: 503,  # the host is (about to be) down for maintenance; with Retry-After
        SpawnFailed: 502,
        SystemdUnavailable: 503,
        DaemonUnreachable: 503,  # the client's: the daemon never answers it
        ConfigError: 500,
        # A deliberate error of a class this table does not know yet: its code and message
        # are still meant for people, so it is answered as itself, not as "internal".
        HostdError: 500,
    }
)

# Codes of failures at the HTTP level. "not-found" is also SessionNotFound's code: a client
# only asks for routes that exist, so on the wire both mean "nothing there".
BAD_REQUEST: Final = "bad-request"  # body not JSON, not an object, or too big
ROUTE_NOT_FOUND: Final = "not-found"
METHOD_NOT_ALLOWED: Final = "method-not-allowed"
INTERNAL: Final = "internal"  # an unexpected exception; the traceback is in the journal
INTERNAL_MESSAGE: Final = "internal error; see the daemon's journal"
HTTP_CODES: Final[Mapping[int, str]] = MappingProxyType(
    {400: BAD_REQUEST, 404: ROUTE_NOT_FOUND, 405: METHOD_NOT_ALLOWED, 500: INTERNAL}
)


def _error_classes() -> dict[str, type[HostdError]]:
    by_code: dict[str, type[HostdError]] = {}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, HostdError):
            if value.code in by_code:  # pragma: no cover - a mistake in hostd.units.errors
                raise RuntimeError(f"two error classes share the code {value.code!r}")
            by_code[value.code] = value
    return by_code


# The errors a daemon's body can carry (not DaemonUnreachable: that one never crosses).
ERROR_BY_CODE: Final[Mapping[str, type[HostdError]]] = MappingProxyType(_error_classes())


def all_codes() -> list[str]:
    """Every code an error body of the daemon can carry, sorted (the OpenAPI enum)."""
    return sorted(set(ERROR_BY_CODE) | set(HTTP_CODES.values()))


def status_for(
    error: HostdError | type[HostdError],
    table: Mapping[type[HostdError], int] = STATUS_BY_ERROR,
) -> int:
    """The HTTP status of an error (or error class): its nearest ancestor in ``table`` (the
    wire's, or one derived from it: every table holds HostdError)."""
    cls = error if isinstance(error, type) else type(error)
    for ancestor in cls.__mro__:
        if issubclass(ancestor, HostdError) and ancestor in table:
            return table[ancestor]
    raise LookupError(f"{cls.__name__}: the table has no HostdError entry")


def retry_after_headers(error: HostdError) -> dict[str, str] | None:
    """Retry-After for the errors that say when to try again (capacity, locked-out,
    draining)."""
    if isinstance(error, CapacityExceeded | LockedOut | Draining):
        return {"Retry-After": str(max(0, int(error.retry_after_s)))}
    return None


def error_body(error: HostdError) -> dict[str, Any]:
    """The JSON body of a deliberate error: its code, message and details (if any)."""
    return error.to_dict()


def http_error_body(code: str, message: str) -> dict[str, Any]:
    """The JSON body of a failure at the HTTP level (no domain error class)."""
    return {"code": code, "message": message}


def error_from_wire(
    code: str, message: str, details: Mapping[str, Any] | None = None
) -> HostdError:
    """The hostd.units.errors instance an error body stands for (client side).

    An unknown code (an HTTP-level one, or one from a newer daemon) becomes a HostdError that
    keeps the code, so what a person is shown still names it.
    """
    details = dict(details or {})
    cls = ERROR_BY_CODE.get(code)
    if cls is CapacityExceeded or cls is GpusUnavailable or cls is LockedOut or cls is Draining:
        retry_after = details.get("retry_after_s")
        if not isinstance(retry_after, int) or isinstance(retry_after, bool):
            retry_after = 30
        return cls(message, retry_after_s=retry_after)
    if cls is ConfigError:
        # ConfigError builds its message from (key, message) pairs; the wire has the message.
        config_error = ConfigError([])
        config_error.message = message
        config_error.args = (message,)
        return config_error
    if cls is None:
        error = HostdError(message, details=details)
        error.code = code  # type: ignore[misc]  # an instance's code shadows the class's
        return error
    return cls(message, details=details)


def error_from_body(body: object) -> HostdError:
    """The error an error body (parsed JSON) stands for; errors as the readers' if it is not
    one."""
    data = json_object(body)
    code, message = data["code"], data["message"]
    details = data.get("details", {})
    if not isinstance(code, str) or not isinstance(message, str):
        raise TypeError("code and message must be strings")
    if not isinstance(details, Mapping):
        raise TypeError("details must be an object")
    return error_from_wire(code, message, details)


# -- requests: what the client sends and the daemon reads ---------------------------------

_TRUE: Final = frozenset({"1", "true"})
_FALSE: Final = frozenset({"0", "false"})
_DIGITS: Final = re.compile(r"[0-9]{1,9}")
_SHOWN_CHARS: Final = 64
_T = TypeVar("_T")


def _show(value: str) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def query_bool(name: str, value: str | None, *, default: bool) -> bool:
    """A boolean query parameter (?wait=, ?follow=): true, false, 1 or 0; InvalidOption."""
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise InvalidOption(f"{name}: expected true, false, 1 or 0, not {_show(value)}")


def query_int(name: str, value: str | None, *, default: int, low: int, high: int) -> int:
    """A whole-number query parameter (?lines=) from ``low`` to ``high``; InvalidOption."""
    if value is None:
        return default
    # Not int(): it also takes " 7", "+7" and "1_0".
    if _DIGITS.fullmatch(value) is None or not low <= int(value) <= high:
        raise InvalidOption(
            f"{name}: expected a whole number from {low} to {high}, not {_show(value)}"
        )
    return int(value)


def query_window(value: str | None) -> HistoryWindow:
    """?window= of a history (1h, 24h; hostd.units.history); InvalidOption for another."""
    return window_named(value)


def request_object(body: bytes) -> dict[str, Any]:
    """A request's body (at most MAX_BODY_BYTES, which the reader enforces) as a JSON object,
    {} when empty; ValueError, with a message for the caller, when it is not one."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested too deep
        raise ValueError(f"request body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"request body must be a JSON object, not {type(data).__name__}")
    return data


def _refuse_unknown(options: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InvalidOption(
            f"unknown option {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(allowed) or 'none'}"
        )


def _without_nulls(options: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in options.items() if value is not None}


def start_body(
    *,
    mem_limit: str | int | None = None,
    cpu_limit: float | str | None = None,
    environment: Mapping[str, str] | None = None,
    default_url: str | None = None,
    command: str | None = None,
    secrets: Mapping[str, str] | None = None,
    profile: str | None = None,
) -> dict[str, Any]:
    """POST /v1/sessions/{user}: the options given (None: the policy's default)."""
    return _without_nulls(
        {
            "mem_limit": mem_limit,
            "cpu_limit": cpu_limit,
            "environment": dict(environment) if environment is not None else None,
            "default_url": default_url,
            "command": command,
            "secrets": dict(secrets) if secrets is not None else None,
            "profile": profile,
        }
    )


def start_from_body(
    options: Mapping[str, Any],
) -> tuple[SessionRequest, str | None, dict[str, str]]:
    """(the request, the named command, the secrets) of a start's body; InvalidInput.
    The chosen profile's slug is start_profile's."""
    _refuse_unknown(options, START_OPTIONS + START_EXTRAS)
    # null means "the policy's default", as if the key were absent.
    request = SessionRequest(
        **{k: v for k, v in _without_nulls(options).items() if k in START_OPTIONS}
    )
    command, secrets = options.get("command"), options.get("secrets") or {}
    if command is not None and not isinstance(command, str):
        raise InvalidOption(f"command: expected a name, not {command!r}")
    if not isinstance(secrets, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in secrets.items()
    ):
        raise InvalidOption("secrets: expected an object of names to strings")
    return request, command, secrets


def start_profile(options: Mapping[str, Any]) -> str | None:
    """The [[profile_list]] slug a start's body chose (None: the default); InvalidOption."""
    profile = options.get("profile")
    if profile is not None and (not isinstance(profile, str) or not 0 < len(profile) <= 64):
        raise InvalidOption(f"profile: expected a profile's slug, not {_show(str(profile))}")
    return profile


def limits_body(
    *, mem_limit: str | int | None = None, cpu_limit: float | str | None = None
) -> dict[str, Any]:
    """PATCH /v1/sessions/{user}: the limits to change (None: leave it)."""
    return _without_nulls({"mem_limit": mem_limit, "cpu_limit": cpu_limit})


def _parsed(name: str, parse: Callable[[object], _T], value: object) -> _T | None:
    """``parse(value)``, None for null; an error names the field, as SessionRequest's do."""
    if value is None:
        return None
    try:
        return parse(value)
    except InvalidInput as exc:
        raise type(exc)(f"{name}: {exc.message}") from exc


def limit_changes_from_body(options: Mapping[str, Any]) -> tuple[int | None, float | None]:
    """(bytes, cores) from a PATCH body; None leaves that limit as it is; InvalidInput."""
    _refuse_unknown(options, LIMIT_OPTIONS)
    mem_limit = _parsed("mem_limit", parse_size, options.get("mem_limit"))
    cpu_limit = _parsed("cpu_limit", parse_cpu, options.get("cpu_limit"))
    if mem_limit is None and cpu_limit is None:
        raise InvalidOption(f"nothing to change: give {', '.join(LIMIT_OPTIONS)} or both")
    return mem_limit, cpu_limit


def credentials_body(username: str, password: str) -> dict[str, Any]:
    """POST /v1/auth."""
    return {"username": username, "password": password}


def credentials_from_body(body: Mapping[str, Any]) -> Credentials:
    """The login of a POST /v1/auth body; InvalidName, InvalidInput. No message quotes the
    password (Credentials' never do)."""
    _refuse_unknown(body, AUTH_FIELDS)
    # Absent is None, which Credentials refuses as "required".
    fields: dict[str, Any] = {name: body.get(name) for name in AUTH_FIELDS}
    return Credentials(**fields)


MAINTENANCE_FIELDS: Final = ("message",)  # PUT /v1/maintenance/announcement
DRAIN_FIELDS: Final = ("at", "message")  # PUT /v1/maintenance/drain


def announcement_body(message: str) -> dict[str, Any]:
    """PUT /v1/maintenance/announcement."""
    return {"message": message}


def announcement_from_body(body: Mapping[str, Any]) -> str:
    """The text of a PUT /v1/maintenance/announcement; InvalidInput."""
    _refuse_unknown(body, MAINTENANCE_FIELDS)
    return check_message(body.get("message"), "message")


def drain_body(drain: Drain) -> dict[str, Any]:
    """PUT /v1/maintenance/drain: ``at`` in ISO 8601 with its offset (UTC)."""
    return drain.to_dict()


def drain_from_body(body: Mapping[str, Any]) -> Drain:
    """The drain of a PUT /v1/maintenance/drain: ``at`` ISO 8601 with an offset, ``message``
    one line; InvalidInput. Whether ``at`` is ahead is the daemon's check (check_drain_at)."""
    _refuse_unknown(body, DRAIN_FIELDS)
    at = body.get("at")
    if not isinstance(at, str):
        raise InvalidOption("at: expected an ISO 8601 time with an offset, e.g. 2025-06-01T22:00Z")
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise InvalidOption(f"at: {_show(at)} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise InvalidOption(f"at: {_show(at)} has no offset; add Z or +00:00")
    return Drain(moment.astimezone(UTC), check_message(body.get("message"), "message"))


def empty_from_body(body: Mapping[str, Any]) -> None:
    """A body that must be empty, or an empty object (POST .../activity); InvalidOption."""
    _refuse_unknown(body, ())


# -- values: what the daemon sends --------------------------------------------------------


def sessions_body(views: Iterable[SessionView]) -> dict[str, Any]:
    """GET /v1/sessions."""
    return {"sessions": [view.to_dict() for view in views]}


def lines_body(lines: Iterable[LogLine]) -> dict[str, Any]:
    """GET .../logs without follow."""
    return {"lines": [line.to_dict() for line in lines]}


def token_body(token: str) -> dict[str, Any]:
    """GET .../token."""
    return {"token": token}


def ndjson_line(line: LogLine) -> bytes:
    """One line of a follow (NDJSON)."""
    return _ndjson(line.to_dict())


def ndjson_error_line(body: Mapping[str, Any]) -> bytes:
    """The last line of a follow that failed after it began (its status line is gone): an
    error body (error_body, http_error_body) under "error"."""
    return _ndjson({"error": body})


def _ndjson(item: Mapping[str, Any]) -> bytes:
    return json.dumps(item, separators=(",", ":")).encode() + b"\n"


def policy_to_dict(policy: PolicyView) -> dict[str, Any]:
    """GET /v1/policy."""
    return {
        "config_file": policy.config_file,
        "isolate_tmp": policy.isolate_tmp,
        "isolate_devices": policy.isolate_devices,
        "disable_user_sudo": policy.disable_user_sudo,
        "user_workingdir": policy.user_workingdir,
        "readonly_paths": list(policy.readonly_paths),
        "readwrite_paths": list(policy.readwrite_paths),
        "default_shell": policy.default_shell,
        "unit_extra_properties": dict(policy.unit_extra_properties),
        "commands": list(policy.commands),
        "mem_limit_bytes": policy.mem_limit_bytes,
        "cpu_limit": policy.cpu_limit,
        "max_mem_limit_bytes": policy.max_mem_limit_bytes,
        "max_cpu_limit": policy.max_cpu_limit,
        "named_server_limit": policy.named_server_limit,
    }


# SessionView, LogLine, UsageView, HostView and AuthResult encode themselves (to_dict, in
# hostd.units.values: pure), as HostdError does; the daemon sends exactly that.


# -- values: what the client reads --------------------------------------------------------


def session_from_body(data: object) -> SessionView:
    """GET, POST, PATCH and DELETE /v1/sessions/{user}."""
    return SessionView.from_dict(json_object(data))


def sessions_from_body(data: object) -> list[SessionView]:
    """GET /v1/sessions."""
    sessions = json_object(data)["sessions"]
    if not isinstance(sessions, list):
        raise TypeError("sessions is not a list")
    return [session_from_body(session) for session in sessions]


def lines_from_body(data: object) -> list[LogLine]:
    """GET .../logs without follow."""
    return [LogLine.from_dict(json_object(line)) for line in json_object(data)["lines"]]


def line_from_ndjson(text: str) -> LogLine:
    """One line of a follow; the error its last line stands for is raised."""
    item = json_object(json.loads(text))
    if "error" in item:  # the daemon failed after the stream began
        raise error_from_body(item["error"])
    return LogLine.from_dict(item)


def token_from_body(data: object) -> str:
    """GET .../token."""
    return str_field(json_object(data), "token")


def usage_from_dict(data: object) -> UsageView:
    """GET .../usage: the inverse of UsageView.to_dict."""
    data = json_object(data)
    return UsageView(
        user=str_field(data, "user"),
        memory_bytes=optional_int(data, "memory_bytes"),
        memory_peak_bytes=optional_int(data, "memory_peak_bytes"),
        memory_limit_bytes=optional_int(data, "memory_limit_bytes"),
        cpu_seconds=optional_float(data, "cpu_seconds"),
        cpu_percent=optional_float(data, "cpu_percent"),
        cpu_limit=optional_float(data, "cpu_limit"),
        cpu_throttled_seconds=optional_float(data, "cpu_throttled_seconds"),
        tasks=optional_int(data, "tasks"),
        oom_kills=optional_int(data, "oom_kills"),
    )


def host_from_dict(data: object) -> HostView:
    """GET /v1/host: the inverse of HostView.to_dict."""
    data = json_object(data)
    return HostView(
        memory_total_bytes=int_field(data, "memory_total_bytes"),
        memory_available_bytes=int_field(data, "memory_available_bytes"),
        cpus=int_field(data, "cpus"),
        sessions_running=int_field(data, "sessions_running"),
        memory_limits_bytes=int_field(data, "memory_limits_bytes"),
        cpu_limits=float_field(data, "cpu_limits"),
        memory_capacity_bytes=int_field(data, "memory_capacity_bytes"),
        starts_waiting=int_field(data, "starts_waiting"),
    )


def usage_history_from_body(data: object) -> UsageHistoryView:
    """GET .../usage/history: the inverse of UsageHistoryView.to_dict."""
    return UsageHistoryView.from_dict(json_object(data))


def host_history_from_body(data: object) -> HostHistoryView:
    """GET /v1/host/history: the inverse of HostHistoryView.to_dict."""
    return HostHistoryView.from_dict(json_object(data))


def auth_from_body(data: object) -> AuthResult:
    """POST /v1/auth: the inverse of AuthResult.to_dict."""
    return AuthResult.from_dict(json_object(data))


def account_from_body(data: object) -> AccountView:
    """GET /v1/accounts/{user}: the inverse of AccountView.to_dict."""
    return AccountView.from_dict(json_object(data))


def maintenance_from_body(data: object) -> MaintenanceView:
    """GET and PUT/DELETE /v1/maintenance...: the inverse of MaintenanceView.to_dict."""
    return MaintenanceView.from_dict(json_object(data))


def health_from_body(data: object) -> dict[str, Any]:
    """GET /v1/health: an object whose keys are the daemon's own report."""
    return dict(json_object(data))


def policy_from_dict(data: object) -> PolicyView:
    """GET /v1/policy: the inverse of policy_to_dict."""
    data = json_object(data)
    extra = data["unit_extra_properties"]
    if not isinstance(extra, Mapping):
        raise TypeError("unit_extra_properties: expected an object")
    return PolicyView(
        config_file=optional_str(data, "config_file"),
        isolate_tmp=bool_field(data, "isolate_tmp"),
        isolate_devices=bool_field(data, "isolate_devices"),
        disable_user_sudo=bool_field(data, "disable_user_sudo"),
        user_workingdir=optional_str(data, "user_workingdir"),
        readonly_paths=strings_field(data, "readonly_paths"),
        readwrite_paths=strings_field(data, "readwrite_paths"),
        default_shell=str_field(data, "default_shell"),
        unit_extra_properties=dict(extra),
        commands=strings_field(data, "commands"),
        mem_limit_bytes=optional_int(data, "mem_limit_bytes"),
        cpu_limit=optional_float(data, "cpu_limit"),
        max_mem_limit_bytes=optional_int(data, "max_mem_limit_bytes"),
        max_cpu_limit=optional_float(data, "max_cpu_limit"),
        # Absent from a daemon older than named servers: none.
        named_server_limit=optional_int(data, "named_server_limit") or 0,
    )
