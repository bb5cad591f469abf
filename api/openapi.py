"""The OpenAPI 3.1 description of the daemon's local API, written by hand (api layer; no I/O).

Kept next to api/daemon.py and checked against it by tests/api/test_openapi.py: every route and
method, every parameter, and the bodies the app really sends validate against these schemas.
Limits (MAX_BODY_BYTES, LINES_MAX, ...) and error codes are hostd.api.wire's, imported, not
copied, so the document and the contract cannot drift.
"""

from __future__ import annotations

from typing import Any, Final

from hostd.api.wire import (
    AUTH_FIELDS,
    LINES_DEFAULT,
    LINES_MAX,
    MAX_BODY_BYTES,
    PASSWORD_MAX,
    USERNAME_MAX,
    all_codes,
)
from hostd.units.history import DEFAULT_WINDOW, HISTORY_WINDOWS
from hostd.units.maintenance import MESSAGE_MAX

__all__ = ["CPU_PATTERN", "SIZE_PATTERN", "openapi_document"]

# What units.parse_size and units.parse_cpu take as strings (they have the last word; these
# patterns are no stricter, so a value the schema refuses is one the daemon refuses too).
SIZE_PATTERN: Final = r"^\s*[0-9]+(\.[0-9]+)?\s*([KkMmGgTt]([Ii]?[Bb])?|[Bb])?\s*$"
CPU_PATTERN: Final = r"^\s*[0-9]+(\.[0-9]+)?\s*$"
_SIZE_MAX = 2**63 - 1
_MESSAGE: Final = {
    "type": "string",
    "maxLength": MESSAGE_MAX,
    "description": "One line of printable text, shown to users.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR_DESCRIPTIONS = {
    400: (
        f"The body is not JSON, not an object, or over {MAX_BODY_BYTES // 1024} KiB "
        "(code bad-request)."
    ),
    401: (
        "The login is refused (login-failed): a wrong password, an unknown user, or an "
        "account that may not log in. One message for every reason; the journal has it."
    ),
    403: (
        "The peer may not use this API (forbidden), or hostd refuses this user (user-refused), "
        "or PAM's account management refuses the account: locked, expired (account-disabled)."
    ),
    404: "No such account (unknown-user), no session (not-found), or no such route (not-found).",
    405: "The path exists but not with this method (method-not-allowed).",
    409: "The session is busy, e.g. stopping (conflict).",
    422: "A value does not validate: invalid-name, invalid-size, invalid-option, ...",
    429: "It would overcommit the machine (capacity); see Retry-After.",
    500: "An unexpected failure (internal) or a broken configuration (invalid-config).",
    502: "systemd ran the session and it failed (spawn-failed); details hold the evidence.",
    503: (
        "systemd or D-Bus did not answer (systemd-unavailable), the account could not be "
        "checked (account-unchecked), or a start is refused while the admin drains the host "
        "for maintenance (draining; its message is the admin's, with Retry-After)."
    ),
}


def _errors(*statuses: int) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in statuses:
        response = _json(_ref("Error"), _ERROR_DESCRIPTIONS[status])
        if status == 429:
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0},
                }
            }
        if status == 503:
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait (draining: until the drain's time).",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 0},
                }
            }
        if status == 405:
            response["headers"] = {
                "Allow": {
                    "description": "The methods the path takes.",
                    "schema": {"type": "string"},
                }
            }
        responses[str(status)] = response
    return responses


# Every route: the authorisation check (403), a method the path lacks (405), the unexpected
# (500). Routes that reach systemd add 503; routes with a user add 404 and 422 (invalid-name).
_ANY = (403, 405, 500)
_USER = (*_ANY, 404, 422, 503)

_USER_PARAMETER = {
    "name": "user",
    "in": "path",
    "required": True,
    "description": "The login name of the session's owner.",
    "schema": {"type": "string"},
}

# Named servers: every route of one session takes the server's name (absent: the default).
_SERVER_PARAMETER = {
    "name": "server",
    "in": "query",
    "required": False,
    "description": (
        "A named server of the user (1 to 32 of a-z, 0-9, '_', '-'); absent or empty: the "
        "default server. An invalid name is 422 invalid-server-name; a start over [session] "
        "named_server_limit is 409 too-many-servers."
    ),
    "schema": {"type": "string"},
}


def _boolean_query(name: str, default: bool, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"{description} Takes true, false, 1 or 0.",
        "schema": {"type": "boolean", "default": default},
    }


_WINDOW_PARAMETER = {
    "name": "window",
    "in": "query",
    "required": False,
    "description": "How far back: "
    + "; ".join(
        f"{w.name}: {w.max_points} points of {w.resolution_s} s" for w in HISTORY_WINDOWS.values()
    )
    + ".",
    "schema": {"type": "string", "enum": list(HISTORY_WINDOWS), "default": DEFAULT_WINDOW},
}
_WINDOW_FIELDS = {
    "window": {"type": "string", "enum": list(HISTORY_WINDOWS)},
    "resolution_s": {"type": "integer", "minimum": 1, "description": "Seconds a point stands for."},
}
_AT = {
    "type": "integer",
    "minimum": 0,
    "description": "The start of the point's interval, Unix time in seconds.",
}

_MEM_LIMIT = {
    "description": "Bytes, or a size like 512M or 2G (base 1024).",
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": _SIZE_MAX},
        {"type": "string", "pattern": SIZE_PATTERN, "maxLength": 128},
        {"type": "null"},
    ],
}
_CPU_LIMIT = {
    "description": "Cores: 1.5 is one and a half.",
    "oneOf": [
        {"type": "number", "minimum": 0.01, "maximum": 1024},
        {"type": "string", "pattern": CPU_PATTERN, "maxLength": 128},
        {"type": "null"},
    ],
}


def _measured(kind: str, description: str, *, minimum: int = 0) -> dict[str, Any]:
    return {"type": [kind, "null"], "minimum": minimum, "description": description}


def _count(kind: str, description: str) -> dict[str, Any]:
    return {"type": kind, "minimum": 0, "description": description}


def _every_key_required(description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": list(properties),
        "additionalProperties": False,
        "properties": properties,
    }


def _schemas() -> dict[str, Any]:
    nullable_string = {"type": ["string", "null"]}
    return {
        "Error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "enum": all_codes()},
                "message": {"type": "string"},
                "details": {
                    "type": "object",
                    "description": (
                        "Evidence, by code: capacity and locked-out have retry_after_s; "
                        "spawn-failed has result, exit_status and log (the last log lines)."
                    ),
                },
            },
        },
        "StreamError": {
            "type": "object",
            "description": "The last line of a follow stream that failed after it began.",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {"error": _ref("Error")},
        },
        "Limits": {
            "type": "object",
            "required": ["mem_limit_bytes", "cpu_limit"],
            "additionalProperties": False,
            "properties": {
                "mem_limit_bytes": {"type": ["integer", "null"], "minimum": 1},
                "cpu_limit": {"type": ["number", "null"], "description": "Cores; 1.0 is one."},
            },
        },
        "Session": {
            "type": "object",
            "required": [
                "user",
                "unit",
                "state",
                "result",
                "exit_status",
                "started_at",
                "url",
                "limits",
                "log",
                "reason",
                "profile",
                "gpus",
                "profile_slug",
                "cull_at",
            ],
            "additionalProperties": False,
            "properties": {
                "user": {"type": "string"},
                "server": {
                    "type": "string",
                    "description": "A named server's name; absent for the default server.",
                },
                "unit": {
                    "type": "string",
                    "description": "jupyter-<user>.service; jupyter-<user>:<server>.service",
                },
                "state": {
                    "type": "string",
                    "enum": ["starting", "running", "stopping", "stopped", "failed"],
                },
                "result": {
                    **nullable_string,
                    "description": "systemd's Result: success, exit-code, signal, oom-kill, ...",
                },
                "exit_status": {"type": ["integer", "null"]},
                "started_at": {
                    **nullable_string,
                    "description": "ISO 8601 date and time (Python's isoformat).",
                },
                "url": {
                    **nullable_string,
                    "description": (
                        "http+unix://<socket path, percent-encoded>/BASE/ (a session on its "
                        "Unix socket) or http://127.0.0.1:PORT/BASE/ (a {PORT} cmd)"
                    ),
                },
                "limits": {"oneOf": [{"type": "null"}, _ref("Limits")]},
                "log": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The last log lines, when the session failed.",
                },
                "reason": {
                    **nullable_string,
                    "description": "Why it ended, for people: out of memory, stopped, idle, ...",
                },
                "profile": {
                    **nullable_string,
                    "description": "The limits profile it got: user:alice, group:staff, ...",
                },
                "gpus": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 0},
                    "description": "The GPUs it holds: their indices in [gpus] devices.",
                },
                "profile_slug": {
                    **nullable_string,
                    "description": "The [[profile_list]] choice it was started with.",
                },
                "cull_at": {
                    **nullable_string,
                    "description": (
                        "When an idle session will be stopped (ISO 8601), once it is within "
                        "[capacity] idle_warning of it; activity before then clears it."
                    ),
                },
            },
        },
        "Drain": {
            "type": "object",
            "required": ["at", "message"],
            "additionalProperties": False,
            "properties": {
                "at": {
                    "type": "string",
                    "description": (
                        "ISO 8601 with an offset (2025-06-01T22:00:00+00:00): when every "
                        "running session is stopped. Not in the past, at most 30 days ahead."
                    ),
                },
                "message": _MESSAGE,
            },
        },
        "Maintenance": {
            "type": "object",
            "required": ["announcement", "drain"],
            "additionalProperties": False,
            "properties": {
                "announcement": {
                    **nullable_string,
                    "description": "The text every hub page shows, if any.",
                },
                "drain": {"oneOf": [{"type": "null"}, _ref("Drain")]},
            },
        },
        "SessionList": {
            "type": "object",
            "required": ["sessions"],
            "additionalProperties": False,
            "properties": {"sessions": {"type": "array", "items": _ref("Session")}},
        },
        "LogLine": {
            "type": "object",
            "required": ["cursor", "timestamp", "message", "priority"],
            "additionalProperties": False,
            "properties": {
                "cursor": {"type": "string", "description": "Resumes a follow after this line."},
                "timestamp": {"type": "string", "description": "ISO 8601 (Python's isoformat)."},
                "message": {"type": "string"},
                "priority": {"type": ["integer", "null"], "description": "syslog priority"},
            },
        },
        "LogLines": {
            "type": "object",
            "required": ["lines"],
            "additionalProperties": False,
            "properties": {"lines": {"type": "array", "items": _ref("LogLine")}},
        },
        "StartOptions": {
            "type": "object",
            "description": "Every key is optional; null means the policy's default.",
            "additionalProperties": False,
            "properties": {
                "mem_limit": _MEM_LIMIT,
                "cpu_limit": _CPU_LIMIT,
                "environment": {
                    "type": ["object", "null"],
                    "description": "Variables the policy's allowed_environment lets through.",
                    "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                    "additionalProperties": {"type": "string"},
                },
                "default_url": {
                    "type": ["string", "null"],
                    "description": "The path the session opens on, e.g. /lab.",
                    "maxLength": 2048,
                    "pattern": "^/",
                },
                "command": {
                    "type": ["string", "null"],
                    "description": "One of the admin's [commands]; absent: [session] cmd.",
                    "maxLength": 64,
                },
                "profile": {
                    "type": ["string", "null"],
                    "description": (
                        "The slug of a [[profile_list]] choice the user may take (absent: "
                        "the default one); its limits are also the caps of this start. A "
                        "choice hidden from the user is refused as an unknown one "
                        "(unknown-profile)."
                    ),
                    "maxLength": 64,
                },
                "secrets": {
                    "type": ["object", "null"],
                    "description": (
                        "Values the session gets in its process environment through files "
                        "only its user can read (HOSTD_CREDENTIALS_DIR), never in Environment= "
                        "or argv: e.g. JUPYTERHUB_API_TOKEN."
                    ),
                    "propertyNames": {"pattern": "^[A-Z_][A-Z0-9_]*$"},
                    "additionalProperties": {"type": "string", "maxLength": 8192},
                },
            },
        },
        "LimitChanges": {
            "type": "object",
            "description": (
                "New limits for a running session, applied live. A key that is absent or null "
                "leaves that limit as it is; at least one must be given (else invalid-option)."
            ),
            "additionalProperties": False,
            "properties": {"mem_limit": _MEM_LIMIT, "cpu_limit": _CPU_LIMIT},
        },
        "Usage": _every_key_required(
            "What a session uses now, read from its cgroup; null where the machine's cgroup "
            "setup does not tell.",
            {
                "user": {"type": "string"},
                "memory_bytes": _measured("integer", "Memory in use now."),
                "memory_peak_bytes": _measured("integer", "The most it has used."),
                "memory_limit_bytes": _measured(
                    "integer", "The memory limit in force; null: none.", minimum=1
                ),
                "cpu_seconds": _measured("number", "CPU time used since the session started."),
                "cpu_percent": _measured(
                    "number", "CPU use over the last few seconds; 100 is one core busy."
                ),
                "cpu_limit": _measured("number", "The CPU limit in force, in cores; null: none."),
                "cpu_throttled_seconds": _measured(
                    "number", "How long the CPU limit held the session back."
                ),
                "tasks": _measured("integer", "Processes and threads."),
                "oom_kills": _measured("integer", "Processes the OOM killer ended."),
            },
        ),
        "UsagePoint": _every_key_required(
            "What a session used during one interval; the last point may be still filling.",
            {
                "at": _AT,
                "memory_bytes": _measured("integer", "The most memory in use in the interval."),
                "memory_limit_bytes": _measured(
                    "integer", "The memory limit in force; null: none or unknown.", minimum=1
                ),
                "cpu_percent": _measured(
                    "number", "Mean CPU use over the interval; 100 is one core busy."
                ),
                "cpu_limit": _measured("number", "The CPU limit in force, in cores; null: none."),
            },
        ),
        "UsageHistory": _every_key_required(
            "A session's usage over a window, oldest point first.",
            {
                "user": {"type": "string"},
                **_WINDOW_FIELDS,
                "points": {"type": "array", "items": _ref("UsagePoint")},
            },
        ),
        "HostPoint": _every_key_required(
            "The host during one interval; the last point may be still filling.",
            {
                "at": _AT,
                "memory_committed_bytes": _count(
                    "integer", "The most memory promised to sessions (their limits together)."
                ),
                "memory_capacity_bytes": _count(
                    "integer", "What all sessions together may be promised (a share of RAM)."
                ),
                "sessions_running": _count("integer", "The most sessions running at once."),
            },
        ),
        "HostHistory": _every_key_required(
            "The host's promised memory against its capacity over a window, oldest first.",
            {**_WINDOW_FIELDS, "points": {"type": "array", "items": _ref("HostPoint")}},
        ),
        "Host": _every_key_required(
            "The machine, and what the sessions ask of it together.",
            {
                "memory_total_bytes": _count("integer", "RAM."),
                "memory_available_bytes": _count("integer", "RAM available now."),
                "cpus": _count("integer", "CPUs."),
                "sessions_running": _count("integer", "Sessions starting or running."),
                "memory_limits_bytes": _count("integer", "The sum of their memory limits."),
                "cpu_limits": _count("number", "The sum of their CPU limits, in cores."),
                "memory_capacity_bytes": _count(
                    "integer", "What all sessions together may be promised (a share of RAM)."
                ),
                "starts_waiting": _count("integer", "Starts queued behind the concurrency limit."),
            },
        ),
        "Credentials": {
            "type": "object",
            "description": (
                "A login to check. username: a login name (letters, digits, '_', '.', '-', "
                "an optional trailing '$'; invalid-name otherwise); password: text without NUL "
                "(invalid-input otherwise). An unknown key is invalid-option."
            ),
            "required": list(AUTH_FIELDS),
            "additionalProperties": False,
            "properties": {
                "username": {
                    "type": "string",
                    "maxLength": USERNAME_MAX,
                    "pattern": r"^[A-Za-z_][A-Za-z0-9_.-]*\$?$",
                },
                "password": {
                    "type": "string",
                    "maxLength": PASSWORD_MAX,
                    "pattern": r"^[^\u0000]+$",  # not empty, no NUL
                },
            },
        },
        "AuthResult": _every_key_required(
            "A login that succeeded.",
            {
                "user": {
                    "type": "string",
                    "description": "The name as the account database spells it: use this one.",
                },
                "admin": {
                    "type": "boolean",
                    "description": "In [auth] admin_users, or in one of admin_groups.",
                },
                "uid": {
                    "type": ["integer", "null"],
                    "minimum": 0,
                    "description": "The account's uid: what the hub binds its session to.",
                },
            },
        ),
        "Account": _every_key_required(
            "An account that may have a session now: the account policy and PAM's account "
            "management (no password) accept it.",
            {
                "user": {
                    "type": "string",
                    "description": "The name as the account database spells it.",
                },
                "uid": {"type": "integer", "minimum": 0},
                "admin": {
                    "type": "boolean",
                    "description": "In [auth] admin_users, or in one of admin_groups, now.",
                },
            },
        ),
        "Profile": _every_key_required(
            "A [[profile_list]] choice the user may take, with the limits a start with it gets.",
            {
                "slug": {"type": "string", "description": "What a start sends as profile."},
                "display_name": {"type": "string"},
                "description": {"type": "string"},
                "default": {
                    "type": "boolean",
                    "description": "The choice a start without a profile gets.",
                },
                "mem_limit_bytes": {"type": ["integer", "null"], "minimum": 0},
                "cpu_limit": {"type": ["number", "null"], "minimum": 0},
                "gpus": {"type": "integer", "minimum": 0},
            },
        ),
        "Profiles": _every_key_required(
            "The choices a user may take, in the admin's order; empty when none.",
            {"profiles": {"type": "array", "items": _ref("Profile")}},
        ),
        "Policy": _every_key_required(
            "What the admin decided for every session that a caller must agree with: the "
            "sandbox ([session], systemdspawner's option names), the names of the [commands], "
            "and [session]'s limits and caps before any [profiles]. No secrets.",
            {
                "config_file": {
                    "type": ["string", "null"],
                    "description": "The file the daemon loaded; null: the built-in defaults.",
                },
                "isolate_tmp": {"type": "boolean", "description": "A private /tmp."},
                "isolate_devices": {"type": "boolean", "description": "A /dev without disks."},
                "disable_user_sudo": {"type": "boolean", "description": "NoNewPrivileges."},
                "user_workingdir": {
                    "type": ["string", "null"],
                    "description": "A template: {USERNAME}, {USERID}; null: the home.",
                },
                "readonly_paths": {"type": "array", "items": {"type": "string"}},
                "readwrite_paths": {"type": "array", "items": {"type": "string"}},
                "default_shell": {"type": "string"},
                "unit_extra_properties": {
                    "type": "object",
                    "description": "Extra unit directives, as the admin wrote them.",
                },
                "commands": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The names a start may give as its command, sorted.",
                },
                "mem_limit_bytes": {"type": ["integer", "null"], "minimum": 1},
                "cpu_limit": {"type": ["number", "null"], "description": "Cores."},
                "max_mem_limit_bytes": {"type": ["integer", "null"], "minimum": 1},
                "max_cpu_limit": {"type": ["number", "null"], "description": "Cores."},
                "named_server_limit": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Named servers a user may run besides the default; 0: none.",
                },
            },
        ),
        "Health": {
            "type": "object",
            "description": "The daemon's own report; its keys belong to hostd.daemon.sessions.",
        },
    }


def _auth_errors() -> dict[str, Any]:
    responses = _errors(*_ANY, 400, 401, 422, 429)
    responses["429"] = {
        **responses["429"],
        "description": (
            "Too many failed logins of this user name lately (locked-out); no password is "
            "checked until Retry-After seconds have passed."
        ),
    }
    return responses


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the app that hostd.api.daemon.build_daemon_app makes."""
    return _with_server_parameter(_document())


def _with_server_parameter(document: dict[str, Any]) -> dict[str, Any]:
    """Every operation on one session takes ``?server=`` (named servers)."""
    for path, item in document["paths"].items():
        if path.startswith("/v1/sessions/{user}"):
            for key, operation in item.items():
                if key != "parameters":
                    operation["parameters"] = [*operation.get("parameters", []), _SERVER_PARAMETER]
    return document


def _document() -> dict[str, Any]:
    session = _ref("Session")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hostd local API",
            "version": "1",
            "description": (
                "JupyterLab sessions, one transient systemd unit per user, over the Unix socket "
                "of hostd. Every route needs a peer that is root or in the daemon's group "
                "(SO_PEERCRED); every error body is an Error."
            ),
        },
        "paths": {
            "/v1/sessions": {
                "get": {
                    "operationId": "listSessions",
                    "summary": "Every session hostd knows of.",
                    "responses": {
                        "200": _json(_ref("SessionList"), "The sessions."),
                        **_errors(*_ANY, 503),
                    },
                }
            },
            "/v1/sessions/{user}": {
                "parameters": [_USER_PARAMETER],
                "post": {
                    "operationId": "startSession",
                    "summary": "Start a user's session (idempotent).",
                    "parameters": [
                        _boolean_query(
                            "wait", True, "Answer once the server answers or has failed."
                        )
                    ],
                    "requestBody": {
                        "required": False,
                        "description": "Options; an empty body takes every default.",
                        "content": {"application/json": {"schema": _ref("StartOptions")}},
                    },
                    "responses": {
                        "201": _json(session, "Started."),
                        "200": _json(session, "It was already running."),
                        **_errors(*_USER, 400, 409, 429, 502),
                    },
                },
                "delete": {
                    "operationId": "stopSession",
                    "summary": "Stop a user's session (idempotent).",
                    "responses": {
                        "200": _json(session, "The final state."),
                        **_errors(*_USER, 409),
                    },
                },
                "get": {
                    "operationId": "getSession",
                    "summary": "One user's session.",
                    "responses": {"200": _json(session, "The session."), **_errors(*_USER)},
                },
                "patch": {
                    "operationId": "setSessionLimits",
                    "summary": "Change a running session's limits live (admins only).",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("LimitChanges")}},
                    },
                    "responses": {
                        "200": _json(session, "The session with its new limits."),
                        **_errors(*_USER, 400, 409, 429),
                    },
                },
            },
            "/v1/sessions/{user}/usage": {
                "parameters": [_USER_PARAMETER],
                "get": {
                    "operationId": "sessionUsage",
                    "summary": "What a starting or running session uses now.",
                    "responses": {"200": _json(_ref("Usage"), "The usage."), **_errors(*_USER)},
                },
            },
            "/v1/sessions/{user}/usage/history": {
                "parameters": [_USER_PARAMETER],
                "get": {
                    "operationId": "sessionUsageHistory",
                    "summary": (
                        "What a session used over the last hour or day (kept while it runs)."
                    ),
                    "parameters": [_WINDOW_PARAMETER],
                    "responses": {
                        "200": _json(_ref("UsageHistory"), "The points, oldest first."),
                        **_errors(*_USER),
                    },
                },
            },
            "/v1/sessions/{user}/token": {
                "parameters": [_USER_PARAMETER],
                "get": {
                    "operationId": "sessionToken",
                    "summary": "The running session's Jupyter token, for a proxy in front of it.",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["token"],
                                "additionalProperties": False,
                                "properties": {"token": {"type": "string"}},
                            },
                            "The token.",
                        ),
                        **_errors(*_USER),
                    },
                },
            },
            "/v1/sessions/{user}/activity": {
                "parameters": [_USER_PARAMETER],
                "post": {
                    "operationId": "sessionActivity",
                    "summary": "The user was active just now: restarts the session's idle clock.",
                    "requestBody": {
                        "required": False,
                        "description": "None, or an empty object.",
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "additionalProperties": False}
                            }
                        },
                    },
                    "responses": {"204": {"description": "Noted."}, **_errors(*_USER, 400)},
                },
            },
            "/v1/sessions/{user}/logs": {
                "parameters": [_USER_PARAMETER],
                "get": {
                    "operationId": "sessionLogs",
                    "summary": "A session's last log lines, or a stream of them (follow).",
                    "parameters": [
                        {
                            "name": "lines",
                            "in": "query",
                            "required": False,
                            "description": "How many of the last lines (not with follow).",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": LINES_MAX,
                                "default": LINES_DEFAULT,
                            },
                        },
                        _boolean_query(
                            "follow",
                            False,
                            "Stream lines as they come, as NDJSON, until the client leaves.",
                        ),
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": False,
                            "description": "With follow: start after this line's cursor.",
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": (
                                "Without follow, a LogLines object. With follow, "
                                "application/x-ndjson: one LogLine per line; if the daemon "
                                "fails after the stream began, a StreamError line ends it."
                            ),
                            "content": {
                                "application/json": {"schema": _ref("LogLines")},
                                "application/x-ndjson": {
                                    "schema": {"oneOf": [_ref("LogLine"), _ref("StreamError")]}
                                },
                            },
                        },
                        **_errors(*_USER),
                    },
                },
            },
            "/v1/auth": {
                "post": {
                    "operationId": "authenticate",
                    "summary": "Check a user's password with PAM, for the hub.",
                    "description": (
                        "PAM (pam_authenticate and pam_acct_mgmt) under [auth] pam_service, in "
                        "a helper process. Root, system accounts and users outside "
                        "allowed_groups are refused without asking PAM. After [auth] "
                        "lockout_failures failures of one user name within lockout_window "
                        "seconds, that name is locked out for lockout_duration seconds, even "
                        "with the right password (in memory: a restart forgets it). A refusal "
                        "takes at least 2 s."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Credentials")}},
                    },
                    "responses": {
                        "200": _json(_ref("AuthResult"), "The login is good."),
                        **_auth_errors(),
                    },
                }
            },
            "/v1/accounts/{user}": {
                "parameters": [_USER_PARAMETER],
                "get": {
                    "operationId": "account",
                    "summary": "Whether an account may have a session now, its uid and admin flag.",
                    "description": (
                        "The account policy (min_uid, allowed_groups) and PAM's account "
                        "management under [auth] pam_service, without a password, in a helper "
                        "process; a locked password (usermod -L) is refused too. What the hub "
                        "re-checks cookies and tokens against. Root and act_for_others may ask "
                        "of anyone, other members of the group of themselves only."
                    ),
                    "responses": {
                        "200": _json(_ref("Account"), "The account may have a session."),
                        **_errors(*_USER),
                    },
                },
            },
            "/v1/accounts/{user}/profiles": {
                "parameters": [_USER_PARAMETER],
                "get": {
                    "operationId": "profiles",
                    "summary": "The [[profile_list]] choices a user may take, with their limits.",
                    "description": (
                        "The choices visible to the account's Unix groups, each with the "
                        "limits a start with it gets ([session], the user's [profiles], then "
                        "the choice). What the hub's start page and HostdSpawner's "
                        "options_form show. Root and act_for_others may ask of anyone, other "
                        "members of the group of themselves only."
                    ),
                    "responses": {
                        "200": _json(_ref("Profiles"), "The choices (maybe none)."),
                        **_errors(*_USER),
                    },
                },
            },
            "/v1/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether the daemon and systemd answer.",
                    "responses": {
                        "200": _json(_ref("Health"), "The report."),
                        **_errors(*_ANY, 503),
                    },
                }
            },
            "/v1/host": {
                "get": {
                    "operationId": "host",
                    "summary": "The machine's memory and CPUs, and what the sessions ask of them.",
                    "responses": {
                        "200": _json(_ref("Host"), "The machine."),
                        **_errors(*_ANY, 503),
                    },
                }
            },
            "/v1/host/history": {
                "get": {
                    "operationId": "hostHistory",
                    "summary": "The memory promised to sessions against capacity, over time.",
                    "parameters": [_WINDOW_PARAMETER],
                    "responses": {
                        "200": _json(_ref("HostHistory"), "The points, oldest first."),
                        **_errors(*_ANY, 422),
                    },
                }
            },
            "/v1/policy": {
                "get": {
                    "operationId": "policy",
                    "summary": "The admin's sandbox and limits, which a caller must agree with.",
                    "responses": {
                        "200": _json(_ref("Policy"), "The policy."),
                        **_errors(*_ANY),
                    },
                }
            },
            "/v1/maintenance": {
                "get": {
                    "operationId": "maintenance",
                    "summary": "The admin's announcement and drain (the hub shows them).",
                    "responses": {
                        "200": _json(_ref("Maintenance"), "The maintenance state."),
                        **_errors(*_ANY),
                    },
                }
            },
            "/v1/maintenance/announcement": {
                "put": {
                    "operationId": "announce",
                    "summary": "Show a text on every hub page (root only).",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["message"],
                                    "additionalProperties": False,
                                    "properties": {"message": _MESSAGE},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(_ref("Maintenance"), "The maintenance state."),
                        **_errors(*_ANY, 400, 422),
                    },
                },
                "delete": {
                    "operationId": "clearAnnouncement",
                    "summary": "Clear the announcement (root only).",
                    "responses": {
                        "200": _json(_ref("Maintenance"), "The maintenance state."),
                        **_errors(*_ANY),
                    },
                },
            },
            "/v1/maintenance/drain": {
                "put": {
                    "operationId": "drain",
                    "summary": "Refuse starts, and stop every session at a time (root only).",
                    "description": (
                        "From now on every start is refused (503 draining, with the message "
                        "and Retry-After). At `at` the daemon stops every running session with "
                        "the reason 'stopped for maintenance: <message>'. Starts stay refused "
                        "after that, across restarts of the daemon, until the drain is "
                        "cancelled (DELETE). A new drain replaces the one set."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Drain")}},
                    },
                    "responses": {
                        "200": _json(_ref("Maintenance"), "The maintenance state."),
                        **_errors(*_ANY, 400, 422),
                    },
                },
                "delete": {
                    "operationId": "cancelDrain",
                    "summary": "Cancel the drain: starts are let through again (root only).",
                    "responses": {
                        "200": _json(_ref("Maintenance"), "The maintenance state."),
                        **_errors(*_ANY),
                    },
                },
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "The daemon's and the sessions' metrics, for Prometheus.",
                    "responses": {
                        "200": {
                            "description": (
                                "The Prometheus text exposition format; the Content-Type "
                                "names its version."
                            ),
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_errors(*_ANY, 503),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {
                        "200": _json({"type": "object"}, "OpenAPI 3.1."),
                        **_errors(*_ANY),
                    },
                }
            },
        },
        "components": {"schemas": _schemas()},
    }
