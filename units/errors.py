"""Every error hostd raises on purpose, in one tree.

Each class carries a stable ``code`` (what API clients match on) and a message for people.
Lower-level failures (D-Bus, pwd, the journal) are translated into these once, where they
happen, with ``raise ... from exc``; ``api/`` maps them to HTTP statuses in one table.

    HostdError
    ├── InvalidInput                 the caller sent something unusable          (400/422)
    │   ├── InvalidName              a user or unit name fails validation      "invalid-name"
    │   ├── InvalidPath              a path fails validation                   "invalid-path"
    │   ├── InvalidSize              a size or CPU amount does not parse       "invalid-size"
    │   ├── InvalidOption            an option is unknown or not allowed       "invalid-option"
    │   ├── UnknownDirective         unit_extra_properties names no known one  "unknown-directive"
    │   └── UnknownProfile           no such [[profile_list]] choice for the   "unknown-profile"
    │                                user (hidden ones look the same)
    ├── ConfigError                  the config file is wrong (every problem)  "invalid-config"
    ├── UserRefused                  root, a system user, outside the groups   "user-refused"
    │   └── AccountDisabled          PAM's account management refuses it:     "account-disabled"
    │                                locked, expired (no password asked)
    ├── AccountUnchecked             the account check itself failed           "account-unchecked"
    ├── UnknownUser                  no such account on this machine           "unknown-user"
    ├── SessionNotFound              no session of that user is known          "not-found"
    ├── SessionConflict              the session is busy (stopping, say)       "conflict"
    ├── CapacityExceeded             starting would overcommit the machine     "capacity"
    ├── Draining                     the admin drains the host for maintenance "draining"
    ├── SpawnFailed                  systemd ran it and it failed (with why)   "spawn-failed"
    ├── PermissionDenied             the peer may not use this API             "forbidden"
    ├── SystemdUnavailable           systemd or D-Bus did not answer           "systemd-unavailable"
    ├── LoginFailed                  wrong password, or the account may not    "login-failed"
    │                                log in (one message for every reason)
    └── LockedOut                    too many failed logins of that user       "locked-out"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "AccountDisabled",
    "AccountUnchecked",
    "CapacityExceeded",
    "ConfigError",
    "Draining",
    "GpusNotConfigured",
    "GpusUnavailable",
    "HostdError",
    "InvalidInput",
    "InvalidName",
    "InvalidOption",
    "InvalidPath",
    "InvalidServerName",
    "InvalidSize",
    "LockedOut",
    "LoginFailed",
    "PermissionDenied",
    "SessionConflict",
    "SessionNotFound",
    "SpawnFailed",
    "SystemdUnavailable",
    "TooManyServers",
    "UnknownDirective",
    "UnknownProfile",
    "UnknownUser",
    "UserRefused",
]


class HostdError(Exception):
    """Base of every deliberate hostd error; ``code`` is stable, ``message`` is for people."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidInput(HostdError):
    """Raised when a request cannot be used as it is; the message names the field."""

    code = "invalid-input"


class InvalidName(InvalidInput):
    """Raised for a user name (or unit name) that fails validation."""

    code = "invalid-name"


class InvalidServerName(InvalidName):
    """Raised for a server name (named servers) that fails validation."""

    code = "invalid-server-name"


class InvalidPath(InvalidInput):
    """Raised for a path that is not absolute, not normalised, or otherwise unsafe."""

    code = "invalid-path"


class InvalidSize(InvalidInput):
    """Raised for a memory size or CPU amount that does not parse or is out of range."""

    code = "invalid-size"


class InvalidOption(InvalidInput):
    """Raised for an option the caller may not set, or a value of the wrong type."""

    code = "invalid-option"


class UnknownDirective(InvalidInput):
    """Raised when unit_extra_properties names a directive that is not in the table."""

    code = "unknown-directive"


class UnknownProfile(InvalidInput):
    """Raised for a start's profile slug that names no [[profile_list]] choice the user may
    take; a choice hidden from the user is refused in the same words as a missing one."""

    code = "unknown-profile"


class ConfigError(HostdError):
    """Raised when the config file is invalid; ``problems`` lists every (key, message)."""

    code = "invalid-config"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = list(problems)
        lines = "; ".join(f"{key}: {message}" for key, message in self.problems)
        super().__init__(f"invalid configuration: {lines}")


class UserRefused(HostdError):
    """Raised for root, users below min_uid and users outside the allowed groups."""

    code = "user-refused"


class AccountDisabled(UserRefused):
    """Raised when PAM's account management refuses an existing account (``usermod -L``,
    ``usermod -e 1``, pam_access, ...): no session starts for it, and the hub's cookies and
    tokens of it stop working. The daemon's journal has PAM's reason."""

    code = "account-disabled"


class AccountUnchecked(HostdError):
    """Raised when the account could not be checked (the PAM helper timed out or crashed):
    the start or the request is refused, since the account may be locked."""

    code = "account-unchecked"


class UnknownUser(HostdError):
    """Raised when the name is valid but no such account exists."""

    code = "unknown-user"


class SessionNotFound(HostdError):
    """Raised when a user has no session that hostd knows of."""

    code = "not-found"


class SessionConflict(HostdError):
    """Raised when a session is in a state that forbids the request (e.g. stopping)."""

    code = "conflict"


class TooManyServers(HostdError):
    """Raised when a user who runs [session] named_server_limit named servers (or may run
    none: named servers off) asks for one more."""

    code = "too-many-servers"


class CapacityExceeded(HostdError):
    """Raised when a start would take the sum of memory limits over the configured share."""

    code = "capacity"

    def __init__(self, message: str, *, retry_after_s: int = 30) -> None:
        super().__init__(message, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


class GpusUnavailable(CapacityExceeded):
    """Raised when a start asks for more GPUs than are free now (others hold them)."""

    code = "gpus-unavailable"


class GpusNotConfigured(InvalidOption):
    """Raised when a start asks for more GPUs than the admin listed in [gpus] (or none)."""

    code = "gpus-not-configured"


class Draining(HostdError):
    """Raised for a start while the admin drains the host (``hostctl drain``): the message is
    the admin's; ``retry_after_s`` is until the drain's time, after which the host is down
    for maintenance (a guess for a client; starts stay refused until the drain is cancelled)."""

    code = "draining"

    def __init__(self, message: str, *, retry_after_s: int = 60) -> None:
        super().__init__(message, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


class SpawnFailed(HostdError):
    """Raised when systemd started the session and it failed; details carry the evidence.

    ``details`` holds systemd's ``result``, the ``exit_status`` and the last ``log`` lines.
    """

    code = "spawn-failed"


class PermissionDenied(HostdError):
    """Raised when the peer on the socket is neither root nor in the daemon's group."""

    code = "forbidden"


class SystemdUnavailable(HostdError):
    """Raised when systemd or its D-Bus does not answer in time."""

    code = "systemd-unavailable"


class LoginFailed(HostdError):
    """Raised when a login is refused: a wrong password, an unknown user, or an account that
    may not log in (root, a system account, outside the allowed groups, locked, expired).

    Its message is the same for every reason, so that names cannot be probed with it; the
    daemon's journal has the real one.
    """

    code = "login-failed"


class LockedOut(HostdError):
    """Raised when a user name had too many failed logins lately: no password is checked
    until ``retry_after_s`` seconds have passed."""

    code = "locked-out"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s
