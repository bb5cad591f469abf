"""From policy, account and request to the transient unit of one session (pure; no I/O).

build_unit is the one place that decides what a session unit looks like. Its output is a
UnitSpec whose property order is fixed, so whole property lists can be compared in tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, TypeVar, cast

from hostd.units._text import prefixed, show
from hostd.units.convert import MS_REC, ip_prefixes
from hostd.units.directives import convert_extra_properties
from hostd.units.environ import env_allowed, validate_environment
from hostd.units.errors import InvalidOption, UserRefused
from hostd.units.gpus import GpuGrant, gpu_environment, gpu_properties
from hostd.units.model import Property, UnitSpec, UserInfo
from hostd.units.names import (
    SLICE,
    UNIT_PREFIX,
    syslog_identifier_for,
    validate_username,
)
from hostd.units.paths import (
    expand_template,
    substitute_placeholders,
    user_placeholders,
    validate_path,
)
from hostd.units.policy import SessionPolicy, SessionRequest, listens_on_socket
from hostd.units.resources import limit_properties
from hostd.units.servers import session_key, unit_name_for_key
from hostd.units.urls import validate_base_url

__all__ = [
    "PORT_MAX",
    "PORT_MIN",
    "RUNTIME_DIRECTORY_MODE",
    "RUN_DIR",
    "SOCKET_PATH_MAX",
    "build_unit",
]

PORT_MIN = 1024
PORT_MAX = 65535
# ref: unix(7): sun_path holds 108 bytes, the last one the terminating NUL.
SOCKET_PATH_MAX: Final = 107
RUN_DIR: Final = "/run"  # where systemd makes RuntimeDirectory= for a system service
RUNTIME_DIRECTORY_MODE: Final = 0o700
# systemd.exec(5) "Credentials": a credential name is a valid file name.
_CREDENTIAL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,255}")
_NO_CREDENTIALS: Mapping[str, str] = MappingProxyType({})

_N = TypeVar("_N", int, float)
# ref: systemd.exec(5) TemporaryFileSystem=; the options are those of a host's /dev/shm.
DEV_SHM: Final = "/dev/shm"  # noqa: S108 (a mount point hostd covers, not a file it makes)
DEV_SHM_OPTIONS: Final = "rw,nosuid,nodev,mode=1777"


def build_unit(
    policy: SessionPolicy,
    user: UserInfo,
    request: SessionRequest,
    *,
    port: int | None = None,
    socket: str | None = None,
    base_url: str,
    credentials: Mapping[str, str] = _NO_CREDENTIALS,
    privileged: bool = False,
    hostd_environment: Mapping[str, str] = _NO_CREDENTIALS,
    gpus: GpuGrant | None = None,
    server: str = "",
    slice_name: str = SLICE,
) -> UnitSpec:
    """The transient unit for user's session under policy, as request asks.

    Where the server listens: ``socket``, the path of its Unix socket, when the policy's cmd
    uses {SOCKET} (that socket's directory is made writable in the session whatever
    ReadOnlyPaths= says); else ``port``. hostd_environment holds variables the daemon itself
    sets (the port, the path of a token file: never a secret, Environment= is readable by
    every local user over D-Bus).
    credentials maps credential names to host paths (LoadCredential=). privileged lets a
    request go above the policy's caps (an admin's request, say). gpus: the GPUs the daemon
    gave the session (units.gpus: their device nodes allowed and bound, their variables set).
    Raises UserRefused for uid 0, InvalidOption for a request the policy does not allow, and
    InvalidName/InvalidPath for values that fail validation.
    server names a named server ("" the default one: jupyter-<user>.service); slice_name is
    the slice it runs in (a user's own slice, where named servers are on).
    """
    if user.uid == 0:
        # Defence in depth: the daemon refuses root before it gets here.
        raise UserRefused(f"refusing to start a session as root ({show(user.name)})")
    name = validate_username(user.name)
    values = {
        **user_placeholders(username=name, uid=user.uid),
        **_endpoint(policy, port, socket),
        "BASE_URL": validate_base_url(base_url),
    }
    unit = unit_name_for_key(session_key(name, server))
    # A user name has no "/" (validate_username), a server name neither (hostd.units.servers);
    # a named server's runtime directory is its unit's name, so two servers never share one.
    runtime_directory = f"{UNIT_PREFIX}{name}" if not server else unit.removesuffix(".service")
    identifier = syslog_identifier_for(name) if not server else runtime_directory
    log_fields = [f"HOSTD_USER={name}".encode()]
    if server:
        log_fields.append(f"HOSTD_SERVER={server}".encode())
    runtime_environment = {"JUPYTER_RUNTIME_DIR": f"{RUN_DIR}/{runtime_directory}"}
    mem = _effective(
        request.mem_limit, policy.mem_limit, policy.max_mem_limit, privileged, "mem_limit"
    )
    cpu = _effective(
        request.cpu_limit, policy.cpu_limit, policy.max_cpu_limit, privileged, "cpu_limit"
    )

    properties = [
        Property(
            "Description",
            "s",
            f"JupyterLab for {name}" + (f" (server {server})" if server else ""),
        ),
        Property("ExecStart", "a(sasb)", [_exec_start(policy.cmd, values)]),
        # Type=exec: a bad binary, user or working directory fails the start job itself,
        # where Type=simple would report success and fail later (status 217).
        Property("Type", "s", "exec"),
        Property("User", "s", name),
        Property("WorkingDirectory", "s", _working_directory(policy, user)),
        Property(
            "Environment",
            "as",
            _environment(
                policy,
                request,
                mem,
                cpu,
                {
                    **hostd_environment,
                    **runtime_environment,
                    **gpu_environment(gpus.indices if gpus else ()),
                },
            ),
        ),
        Property("Slice", "s", slice_name),
        # ref: systemd.exec(5) RuntimeDirectory=: /run/jupyter-<user>, the user's alone (0700),
        # removed when the session ends. Jupyter keeps its runtime files there
        # (JUPYTER_RUNTIME_DIR), the kernels' connection files and, with the session
        # environment's transport "ipc", the kernels' ZeroMQ sockets: no kernel port on the
        # loopback every session shares (there, kernels starting at once picked the same
        # free port and died: tests/api/hub/systemd/test_load.py).
        Property("RuntimeDirectory", "as", [runtime_directory]),
        Property("RuntimeDirectoryMode", "u", RUNTIME_DIRECTORY_MODE),
        # A failed transient unit would block the next start of its name (UnitExists)
        # until ResetFailedUnit; this lets systemd collect it.
        Property("CollectMode", "s", "inactive-or-failed"),
        Property("SyslogIdentifier", "s", identifier),
        Property("LogExtraFields", "aay", log_fields),
        # On cgroup v1 systemd creates a unit's cgroup in a controller only when its
        # accounting is on, and hostd reads usage from there.
        Property("MemoryAccounting", "b", True),
        Property("CPUAccounting", "b", True),
        Property("TasksAccounting", "b", True),
        Property("TimeoutStopUSec", "t", policy.stop_timeout_usec),
        Property("KillMode", "s", "control-group"),
        # ref: systemd.service(5) OOMPolicy=; see SessionPolicy.oom_policy.
        Property("OOMPolicy", "s", policy.oom_policy),
    ]
    loads = _load_credentials(credentials)
    if loads:
        properties.append(Property("LoadCredential", "a(ss)", loads))
    properties.extend(limit_properties(mem, cpu, allow_swap=policy.allow_swap))
    if policy.isolate_tmp:
        properties.append(Property("PrivateTmp", "b", True))
        # PrivateTmp= leaves /dev/shm the host's, even under PrivateDevices= (bound into the
        # private /dev): a file there was readable by every other session and outlived this
        # one. A tmpfs of the session's own; POSIX shared memory and semaphores still work.
        properties.append(Property("TemporaryFileSystem", "a(ss)", [(DEV_SHM, DEV_SHM_OPTIONS)]))
    if policy.isolate_devices:
        properties.append(Property("PrivateDevices", "b", True))
    if gpus is not None:
        properties.extend(gpu_properties(gpus, private_devices=policy.isolate_devices))
    if policy.disable_user_sudo:
        # NoNewPrivileges stops sudo and setuid binaries from raising privileges;
        # RestrictSUIDSGID also stops the session from making new setuid files.
        properties.append(Property("NoNewPrivileges", "b", True))
        properties.append(Property("RestrictSUIDSGID", "b", True))
    # The socket's directory stays writable under the admin's ReadOnlyPaths= (["/"], say):
    # the server binds its socket there.
    socket_dirs = [values["SOCKET"].rsplit("/", 1)[0]] if "SOCKET" in values else []
    for dbus_name, templates, extra in (
        ("ReadOnlyPaths", policy.readonly_paths, []),
        ("ReadWritePaths", policy.readwrite_paths, socket_dirs),
    ):
        paths = [_expand_path(template, name, user.uid) for template in templates]
        paths += [path for path in extra if path not in paths]
        if paths:
            properties.append(Property(dbus_name, "as", paths))
    if policy.shared_paths:
        # A read-only bind of each path onto itself stays visible and read-only whatever
        # ProtectSystem=, ProtectHome= or ReadWritePaths= an admin adds (systemd.exec(5)).
        binds = [(path, path, False, MS_REC) for path in policy.shared_paths]
        properties.append(Property("BindReadOnlyPaths", "a(ssbt)", binds))
    if policy.ip_address_deny:
        # ref: systemd.resource-control(5) IPAddressDeny= (eBPF, cgroup v2): connect() and
        # sendmsg() to these fail with EPERM. The admin's list was checked by SessionPolicy.
        deny = ip_prefixes(list(policy.ip_address_deny))
        properties.append(Property("IPAddressDeny", "a(iayu)", deny))
    return UnitSpec(unit, tuple(_overlay(properties, policy)))


def _endpoint(policy: SessionPolicy, port: int | None, socket: str | None) -> dict[str, str]:
    """{SOCKET} or {PORT}, whichever the policy's cmd listens on."""
    if listens_on_socket(policy.cmd):
        if socket is None:
            raise InvalidOption("cmd listens on {SOCKET}, and no socket path was given")
        path = validate_path(socket)
        if len(path.encode()) > SOCKET_PATH_MAX:
            raise InvalidOption(
                f"socket path {show(path)} is longer than {SOCKET_PATH_MAX} bytes (sun_path)"
            )
        return {"SOCKET": path}
    if isinstance(port, bool) or not isinstance(port, int) or not PORT_MIN <= port <= PORT_MAX:
        raise InvalidOption(f"invalid port {show(port)}: expected {PORT_MIN}..{PORT_MAX}")
    return {"PORT": str(port)}


def _effective(
    requested: _N | None, default: _N | None, maximum: _N | None, privileged: bool, what: str
) -> _N | None:
    if requested is None:
        return default
    cap = default if maximum is None else maximum
    if cap is not None and requested > cap and not privileged:
        raise InvalidOption(f"requested {what} {requested} is above the allowed {cap}")
    return requested


def _exec_start(cmd: tuple[str, ...], values: Mapping[str, str]) -> tuple[str, list[str], bool]:
    # systemd expands $VAR and ${VAR} in ExecStart= argv, also for transient units, and reads
    # "$$" as "$" (systemd.service(5), "Command lines"): a substituted value (a user name
    # ending in "$") must not start an expansion. The program path is not expanded.
    escaped = {key: value.replace("$", "$$") for key, value in values.items()}
    argv = [substitute_placeholders(arg, escaped, what="cmd argument") for arg in cmd]
    with prefixed("cmd[0]"):
        path = validate_path(substitute_placeholders(cmd[0], values, what="cmd argument"))
    # The bool is ExecStart's "ignore failure" ("-" prefix): a failing server is a failure.
    return (path, argv, False)


def _expand_path(template: str, name: str, uid: int) -> str:
    return validate_path(expand_template(template, username=name, uid=uid))


def _working_directory(policy: SessionPolicy, user: UserInfo) -> str:
    if policy.user_workingdir is not None:
        with prefixed("user_workingdir"):
            return _expand_path(policy.user_workingdir, user.name, user.uid)
    with prefixed("home directory"):
        return validate_path(user.home)


def _environment(
    policy: SessionPolicy,
    request: SessionRequest,
    mem: int | None,
    cpu: float | None,
    daemon: Mapping[str, str],
) -> list[str]:
    # As JupyterHub's Spawner.get_env and systemdspawner set them.
    derived: dict[str, str] = {"SHELL": policy.default_shell}
    derived.update(validate_environment(daemon, what="hostd_environment"))
    if mem is not None:
        derived["MEM_LIMIT"] = str(mem)
    if cpu is not None:
        derived["CPU_LIMIT"] = str(cpu)
    if request.default_url is not None:
        derived["JUPYTERHUB_DEFAULT_URL"] = request.default_url
    for key in request.environment:
        if not env_allowed(key, policy.allowed_environment):
            allowed = ", ".join(policy.allowed_environment) or "none"
            raise InvalidOption(f"environment variable {key} is not allowed (allowed: {allowed})")
    environment = dict(policy.environment)
    for source, variables in (("hostd", derived), ("the request", request.environment)):
        for key, value in variables.items():
            if key in environment:
                raise InvalidOption(
                    f"environment variable {key} from {source} is already set by the policy "
                    "or by hostd"
                )
            environment[key] = value
    return [f"{key}={value}" for key, value in sorted(environment.items())]


def _load_credentials(credentials: Mapping[str, str]) -> list[tuple[str, str]]:
    if not isinstance(credentials, Mapping):
        raise InvalidOption(f"credentials must be a mapping, not {show(credentials)}")
    loads: list[tuple[str, str]] = []
    for name, path in credentials.items():
        if not isinstance(name, str) or not _CREDENTIAL_NAME.fullmatch(name) or name in {".", ".."}:
            raise InvalidOption(f"invalid credential name {show(name)}")
        with prefixed(f"credential {name}"):
            loads.append((name, validate_path(path)))
    return sorted(loads)


def _overlay(properties: list[Property], policy: SessionPolicy) -> list[Property]:
    """properties with the admin's unit_extra_properties on top: a list property (ReadOnlyPaths,
    ...) gains the extra entries, as repeated lines do in a unit file; any other is replaced
    in place. New properties follow, sorted by directive name."""
    result = list(properties)
    index = {prop.name: i for i, prop in enumerate(result)}
    for extra in convert_extra_properties(policy.unit_extra_properties):
        at = index.get(extra.name)
        if at is None:
            index[extra.name] = len(result)
            result.append(extra)
        elif extra.signature.startswith("a"):
            old = cast("list[object]", result[at].value)
            new = [item for item in cast("list[object]", extra.value) if item not in old]
            result[at] = Property(extra.name, extra.signature, old + new)
        else:
            result[at] = extra
    return result
