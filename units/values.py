"""The values that cross the daemon's socket, both ways: typed, frozen, no I/O.

Every process uses them: the daemon builds them, its HTTP face turns them into JSON
(hostd.api.wire), the client, the hub and the spawner read them back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from hostd.units.errors import InvalidInput, InvalidName
from hostd.units.names import validate_username
from hostd.units.policy import SessionPolicy

__all__ = [
    "AccountView",
    "AuthResult",
    "Caller",
    "Credentials",
    "HostView",
    "Limits",
    "LogLine",
    "PeerCredentials",
    "PolicyView",
    "SessionView",
    "StartOutcome",
    "UsageView",
]

SessionState = Literal["starting", "running", "stopping", "stopped", "failed"]
SESSION_STATES: tuple[SessionState, ...] = ("starting", "running", "stopping", "stopped", "failed")
# The [session] options that make a session's sandbox: systemdspawner's names, which a
# JupyterHub config may set and must then agree with the admin's (PolicyView).
SANDBOX_OPTIONS: tuple[str, ...] = (
    "isolate_tmp",
    "isolate_devices",
    "disable_user_sudo",
    "user_workingdir",
    "readonly_paths",
    "readwrite_paths",
    "default_shell",
    "unit_extra_properties",
)
# systemdspawner's options that hostd has no equivalent of, and why: HostdSpawner refuses a
# start while one is set, `hostctl import` leaves them out, both with these words.
UNSUPPORTED_SPAWNER_OPTIONS: Mapping[str, str] = {
    "username_template": "a session runs as the account named as the JupyterHub user",
    "unit_name_template": "units are always named jupyter-<user>.service",
    "extra_paths": "PATH is the admin's ([session] environment in hostd.toml)",
    "dynamic_users": "sessions run as existing accounts (hostd refuses system users)",
    "slice": "sessions always run in jupyter.slice, capped by [capacity] memory_share",
    "mem_guarantee": "hostd enforces limits, not guarantees",
    "cpu_guarantee": "hostd enforces limits, not guarantees",
}
# Longer is not a password a person types; PAM modules copy it around (pam_unix caps at 512).
PASSWORD_MAX = 1024


@dataclass(frozen=True)
class PeerCredentials:
    """Who is on the other end of the Unix socket (SO_PEERCRED): set by the server, not HTTP."""

    pid: int
    uid: int
    gid: int


@dataclass(frozen=True)
class Caller:
    """An authorised peer. ``privileged`` (root) may exceed the policy's per-request caps;
    ``acts_for_others`` (root, and the identities the admin names in [daemon] act_for_others:
    the hub's user) may act on any user's session. Every other member of the socket's group
    acts only for itself: membership lets a user reach the daemon, not act as anyone."""

    uid: int
    name: str
    privileged: bool
    acts_for_others: bool = False

    def may_act_for(self, user: str) -> bool:
        return self.acts_for_others or self.name == user


@dataclass(frozen=True)
class Limits:
    """The limits a session runs with (what systemd enforces), for display."""

    mem_limit_bytes: int | None
    cpu_limit: float | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Limits:
        """The inverse of the "limits" part of SessionView.to_dict."""
        cpu_limit = data["cpu_limit"]
        return cls(
            mem_limit_bytes=data["mem_limit_bytes"],
            cpu_limit=None if cpu_limit is None else float(cpu_limit),
        )


@dataclass(frozen=True)
class SessionView:
    """One user's session as the API shows it."""

    user: str
    unit: str
    state: SessionState
    result: str | None = None  # systemd's Result: success, exit-code, signal, oom-kill, ...
    exit_status: int | None = None
    started_at: datetime | None = None
    # Once the session has an address: http+unix://<socket path, percent-encoded>/BASE/, or
    # http://127.0.0.1:PORT/BASE/ for a {PORT} cmd.
    url: str | None = None
    limits: Limits | None = None
    log: tuple[str, ...] = ()  # last log lines, filled in when the session failed
    details: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None  # why it ended: "out of memory ...", "stopped by root", "idle ..."
    profile: str | None = None  # the limits profile it got: "user:alice", "group:staff"
    gpus: tuple[int, ...] = ()  # the GPUs it holds (indices in [gpus]), from its unit
    profile_slug: str | None = None  # the [[profile_list]] choice it was started with
    # When an idle session will be culled, once it is within [capacity] idle_warning of it;
    # activity before then clears it (and the cull).
    cull_at: datetime | None = None
    # Named servers: the server's name; "" the default server (then absent from to_dict, so
    # a default server's JSON is what it always was).
    server: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            **({"server": self.server} if self.server else {}),
            "unit": self.unit,
            "state": self.state,
            "result": self.result,
            "exit_status": self.exit_status,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "url": self.url,
            "limits": (
                {"mem_limit_bytes": self.limits.mem_limit_bytes, "cpu_limit": self.limits.cpu_limit}
                if self.limits
                else None
            ),
            "log": list(self.log),
            "reason": self.reason,
            "profile": self.profile,
            "gpus": list(self.gpus),
            "profile_slug": self.profile_slug,
            "cull_at": self.cull_at.isoformat() if self.cull_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionView:
        """The inverse of to_dict (what API clients read). KeyError for a missing field,
        ValueError or TypeError for an unknown state or a timestamp that does not parse."""
        state = data["state"]
        if state not in SESSION_STATES:
            raise ValueError(f"unknown session state {state!r}")
        started_at, limits = data["started_at"], data["limits"]
        cull_at = data.get("cull_at")  # absent from a daemon older than the cull warning
        return cls(
            user=data["user"],
            unit=data["unit"],
            state=state,
            result=data["result"],
            exit_status=data["exit_status"],
            started_at=None if started_at is None else datetime.fromisoformat(started_at),
            url=data["url"],
            limits=None if limits is None else Limits.from_dict(limits),
            log=tuple(data["log"]),
            reason=data.get("reason"),
            profile=data.get("profile"),
            gpus=tuple(data.get("gpus", ())),  # absent from a daemon older than GPUs
            profile_slug=data.get("profile_slug"),  # absent from a daemon before choices
            cull_at=None if cull_at is None else datetime.fromisoformat(cull_at),
            server=data.get("server", ""),
        )


@dataclass(frozen=True)
class LogLine:
    """One journal entry of a session; ``cursor`` resumes a follow after it."""

    cursor: str
    timestamp: datetime
    message: str
    priority: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor,
            "timestamp": self.timestamp.isoformat(),
            "message": self.message,
            "priority": self.priority,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogLine:
        """The inverse of to_dict. KeyError for a missing field, ValueError or TypeError for a
        timestamp that does not parse."""
        return cls(
            cursor=data["cursor"],
            timestamp=datetime.fromisoformat(data["timestamp"]),
            message=data["message"],
            priority=data["priority"],
        )


@dataclass(frozen=True)
class StartOutcome:
    """What a start did: ``created`` is False when the session was already running."""

    session: SessionView
    created: bool


@dataclass(frozen=True)
class UsageView:
    """What a session uses now, read from its cgroup (v1 or v2). None: not measurable."""

    user: str
    memory_bytes: int | None = None
    memory_peak_bytes: int | None = None
    memory_limit_bytes: int | None = None
    cpu_seconds: float | None = None  # CPU time used since the session started
    cpu_percent: float | None = None  # over the last few seconds; 100.0 = one core busy
    cpu_limit: float | None = None  # cores (1.0 = one core)
    cpu_throttled_seconds: float | None = None
    tasks: int | None = None
    oom_kills: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class HostView:
    """The machine and what the sessions ask of it together."""

    memory_total_bytes: int
    memory_available_bytes: int
    cpus: int
    sessions_running: int  # starting or running
    memory_limits_bytes: int  # sum of the running sessions' memory limits
    cpu_limits: float  # sum of their CPU limits, in cores
    memory_capacity_bytes: int  # what all sessions together may be promised (share of RAM)
    starts_waiting: int  # starts queued behind the concurrency limit

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Credentials:
    """A user name and password to check, valid when made (InvalidName, InvalidInput).

    The name is one validate_username takes (1 to 32 characters); the password is 1 to
    PASSWORD_MAX characters of text without NUL (which would cut it short in C). No message
    and no repr ever shows the password.
    """

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        _check_username(self.username)
        _check_password(self.password)


def _check_username(name: object) -> None:
    if name is None:
        raise InvalidName("username is required")
    validate_username(name)


def _check_password(password: object) -> None:
    # The messages name the rule, never the value.
    if password is None:
        raise InvalidInput("password is required")
    if not isinstance(password, str):
        raise InvalidInput(f"password must be a string, not {type(password).__name__}")
    if not password:
        raise InvalidInput("password must not be empty")
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"password is longer than {PASSWORD_MAX} characters")
    if "\0" in password:
        raise InvalidInput("password must not contain NUL")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, as JSON's "\ud800" gives
        raise InvalidInput("password is not valid Unicode text") from None


def _uid(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError("uid must be a whole number of at least 0")
    return value


@dataclass(frozen=True)
class AuthResult:
    """A login that succeeded: the name as the account database spells it, whether the user is
    one of the hub's admins ([auth] admin_users, admin_groups), and the account's uid (what
    the hub binds the session to; None from a daemon older than that)."""

    user: str
    admin: bool
    uid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "admin": self.admin, "uid": self.uid}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuthResult:
        """The inverse of to_dict; KeyError for a missing field, TypeError for a wrong type."""
        user, admin = data["user"], data["admin"]
        if not isinstance(user, str) or not isinstance(admin, bool):
            raise TypeError("user must be a string and admin a boolean")
        return cls(user=user, admin=admin, uid=_uid(data.get("uid")))


@dataclass(frozen=True)
class AccountView:
    """An account that may have a session now (the account policy and PAM's account
    management said yes): its name as the database spells it, its uid, and whether it is an
    admin. What the hub re-checks its cookies and tokens against (GET /v1/accounts/{user})."""

    user: str
    uid: int
    admin: bool

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "uid": self.uid, "admin": self.admin}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccountView:
        """The inverse of to_dict; KeyError for a missing field, TypeError for a wrong type."""
        user, uid, admin = data["user"], _uid(data["uid"]), data["admin"]
        if not isinstance(user, str) or uid is None or not isinstance(admin, bool):
            raise TypeError("user must be a string, uid a number and admin a boolean")
        return cls(user=user, uid=uid, admin=admin)


@dataclass(frozen=True, kw_only=True)
class PolicyView:
    """What the admin decided for every session that a caller must agree with (the sandbox,
    the names of the [commands], the [session] limits and their caps), for GET /v1/policy.

    Any member of the socket's group may read it: it holds no secret, no path of one, no
    token and nothing of PAM; not the [session] environment (an admin may put a secret
    there) nor the commands' argv. ``config_file`` is the file the daemon loaded (None: the
    built-in defaults), which messages name so a person knows where to change it. Limits are
    [session]'s, before any [profiles] raises or lowers them for a user.
    """

    config_file: str | None
    isolate_tmp: bool
    isolate_devices: bool
    disable_user_sudo: bool
    user_workingdir: str | None
    readonly_paths: tuple[str, ...]
    readwrite_paths: tuple[str, ...]
    default_shell: str
    unit_extra_properties: Mapping[str, Any]
    commands: tuple[str, ...]  # the names of [commands], sorted
    mem_limit_bytes: int | None
    cpu_limit: float | None
    max_mem_limit_bytes: int | None
    max_cpu_limit: float | None
    # [session] named_server_limit: how many named servers a user may run (0: none).
    named_server_limit: int = 0

    @classmethod
    def of(
        cls,
        policy: SessionPolicy,
        *,
        commands: Iterable[str] = (),
        config_file: str | None = None,
    ) -> PolicyView:
        """The view of an admin's checked [session] policy and [commands] names."""
        return cls(
            config_file=config_file,
            isolate_tmp=policy.isolate_tmp,
            isolate_devices=policy.isolate_devices,
            disable_user_sudo=policy.disable_user_sudo,
            user_workingdir=policy.user_workingdir,
            readonly_paths=policy.readonly_paths,
            readwrite_paths=policy.readwrite_paths,
            default_shell=policy.default_shell,
            unit_extra_properties=dict(policy.unit_extra_properties),
            commands=tuple(sorted(commands)),
            mem_limit_bytes=policy.mem_limit,
            cpu_limit=policy.cpu_limit,
            max_mem_limit_bytes=policy.max_mem_limit,
            max_cpu_limit=policy.max_cpu_limit,
            named_server_limit=policy.named_server_limit,
        )
