"""HTTP statuses for hostd's errors, and back again (api layer: translation only; no I/O).

The daemon answers every failure with one JSON body, ``{"code", "message"[, "details"]}``.
``STATUS_BY_ERROR`` is the one table from the domain's error classes (hostd.errors) to HTTP
statuses; ``ERROR_BY_CODE`` is its reverse, from a body's code to the class the client raises.
A few failures are about HTTP itself, not the domain (a body that is not JSON, no such route):
they have codes of their own here and no class in hostd.errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from starlette.responses import JSONResponse

from hostd.units import errors
from hostd.units.errors import (
    CapacityExceeded,
    ConfigError,
    HostdError,
    InvalidInput,
    LockedOut,
    LoginFailed,
    PermissionDenied,
    SessionConflict,
    SessionNotFound,
    SpawnFailed,
    SystemdUnavailable,
    UnknownUser,
    UserRefused,
)

__all__ = [
    "BAD_REQUEST",
    "ERROR_BY_CODE",
    "HTTP_CODES",
    "INTERNAL",
    "INTERNAL_MESSAGE",
    "METHOD_NOT_ALLOWED",
    "ROUTE_NOT_FOUND",
    "STATUS_BY_ERROR",
    "all_codes",
    "error_from_wire",
    "error_response",
    "http_error_response",
    "status_for",
]

# Looked up along the class's MRO, so a subclass maps like its nearest listed ancestor.
STATUS_BY_ERROR: Final[Mapping[type[HostdError], int]] = MappingProxyType(
    {
        InvalidInput: 422,
        LoginFailed: 401,
        LockedOut: 429,  # with Retry-After
        PermissionDenied: 403,
        UserRefused: 403,
        UnknownUser: 404,
        SessionNotFound: 404,
        SessionConflict: 409,
        CapacityExceeded: 429,  # with Retry-After (RFC 9110 §10.2.3)
        SpawnFailed: 502,
        SystemdUnavailable: 503,
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
            if value.code in by_code:  # pragma: no cover - a mistake in hostd.errors
                raise RuntimeError(f"two error classes share the code {value.code!r}")
            by_code[value.code] = value
    return by_code


ERROR_BY_CODE: Final[Mapping[str, type[HostdError]]] = MappingProxyType(_error_classes())


def all_codes() -> list[str]:
    """Every code an error body of the daemon can carry, sorted (the OpenAPI enum)."""
    return sorted(set(ERROR_BY_CODE) | set(HTTP_CODES.values()))


def status_for(error: HostdError | type[HostdError]) -> int:
    """The HTTP status of an error (or error class): its nearest ancestor in the table."""
    cls = error if isinstance(error, type) else type(error)
    for ancestor in cls.__mro__:
        if issubclass(ancestor, HostdError) and ancestor in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[ancestor]
    raise AssertionError("unreachable: HostdError itself is in the table")  # pragma: no cover


def error_response(error: HostdError) -> JSONResponse:
    """The JSON response for a deliberate error: its status, code, message and details."""
    headers = None
    if isinstance(error, CapacityExceeded | LockedOut):
        headers = {"Retry-After": str(max(0, int(error.retry_after_s)))}
    return JSONResponse(error.to_dict(), status_code=status_for(error), headers=headers)


def http_error_response(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The JSON response for a failure at the HTTP level (no domain error class)."""
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def error_from_wire(
    code: str, message: str, details: Mapping[str, Any] | None = None
) -> HostdError:
    """The hostd.errors instance an error body stands for (client side).

    An unknown code (an HTTP-level one, or one from a newer daemon) becomes a HostdError that
    keeps the code, so what a person is shown still names it.
    """
    details = dict(details or {})
    cls = ERROR_BY_CODE.get(code)
    if cls is CapacityExceeded or cls is LockedOut:
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
