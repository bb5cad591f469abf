"""A JupyterHub spawner over hostd's local API (api layer: a client of the daemon, never root).

JupyterHub runs as an unprivileged user in group ``hostd`` and talks only to the daemon's socket;
the daemon (root) makes ``jupyter-<user>.service`` with the admin's policy::

    c.JupyterHub.spawner_class = "hostd"
    c.SystemdSpawner.mem_limit = "2G"        # systemdspawner's option names keep working
    c.SystemdSpawner.isolate_tmp = True      # ... and must agree with the daemon's policy

Who decides what. Limits (``mem_limit``, ``cpu_limit``) are asked for in each start; the daemon
caps them. The sandbox (``isolate_tmp``, ``isolate_devices``, ``disable_user_sudo``,
``user_workingdir``, ``readonly_paths``, ``readwrite_paths``, ``default_shell``,
``unit_extra_properties``) is the daemon admin's ``[session]`` policy: JupyterHub cannot change
it. An option set here is checked against that policy, which the daemon answers on GET
/v1/policy (this process never reads hostd.toml, nor loads anything of the root side), and a
start that asks for something else is refused with a message naming the option, never ignored.
The command is the admin's too (``[commands] singleuser``, picked by ``hostd_command``).

A command on a loopback port (``{PORT}``) works with every JupyterHub. One on a Unix socket
(``{SOCKET}``) needs JupyterHub 6, whose own HTTP client and whose configurable-http-proxy (5.3
or later) connect to ``http+unix://`` servers: HostdSpawner hands it the socket as
``Server.connect_url`` (see ``socket_connect_url``); JupyterHub 5 is refused, the session stopped.

Secrets never reach the unit's Environment= or argv (every local user can read those): the API
token and anything named like a secret go in the start's ``secrets`` (files only the user can
read, exported by hostd-session-exec); the other JUPYTERHUB_* variables go in ``environment``.

Works with JupyterHub 5.x and 6.x (SpawnException exists from 6.0; on 5.x a tornado HTTPError
carries the same message).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, Literal, NoReturn
from urllib.parse import unquote, urlparse

from jupyterhub import spawner as jupyterhub_spawner
from jupyterhub import version_info as jupyterhub_version
from tornado import web
from traitlets import Bool, Dict, List, Unicode, default
from traitlets.config import Configurable

from hostd.api.client import DEFAULT_SOCKET, DaemonUnreachable, HostdClient
from hostd.api.wire import STATUS_BY_ERROR, status_for
from hostd.units import SessionPolicy, convert_extra_properties
from hostd.units.choices import ProfileView, describe_limits
from hostd.units.environ import looks_secret
from hostd.units.errors import (
    CapacityExceeded,
    HostdError,
    InvalidInput,
    PermissionDenied,
    SessionNotFound,
    SpawnFailed,
    UnknownProfile,
)
from hostd.units.servers import session_key, unit_name_for_key
from hostd.units.sizes import format_size
from hostd.units.values import (
    SANDBOX_OPTIONS,
    UNSUPPORTED_SPAWNER_OPTIONS,
    PolicyView,
    SessionView,
)

__all__ = [
    "DEFAULT_COMMAND",
    "DEFAULT_HOSTD_CONFIG",
    "POLICY_OPTIONS",
    "SPAWN_STATUS",
    "HostdSpawner",
    "SystemdSpawner",
    "from_hostd_error",
    "policy_conflicts",
    "render_profile_form",
    "socket_connect_url",
    "spawn_exception",
    "split_environment",
    "with_session_log",
]

DEFAULT_COMMAND: Final = "singleuser"
UNIX_SOCKET_SCHEME: Final = "http+unix:"
# JupyterHub 6 connects to http+unix:// servers (jupyterhub/httpclient.py, _HTTPUnixConnector);
# 5.x checks a server with tornado's client, which knows only http and https.
SOCKETS_FROM: Final = (6, 0)
# The bytes a socket path keeps as they are in socket_connect_url: what no lowercasing changes.
_CASE_PROOF: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789._-~")
# The sandbox options of systemdspawner that are the daemon admin's ([session] in hostd.toml).
POLICY_OPTIONS: Final = SANDBOX_OPTIONS
# hostd.config.DEFAULT_CONFIG_PATH, written out: this process never loads the root side. Only
# named in messages (when the daemon runs on its built-in defaults); never read.
DEFAULT_HOSTD_CONFIG: Final = "/etc/hostd/hostd.toml"
# A stand-in for [session] cmd, which SessionPolicy needs and the sandbox options do not touch.
_ANY_CMD: Final = ("/bin/true",)
# JupyterHub's Spawner.get_env adds these from the limits; hostd sets them itself from the
# limits it really enforces (units.build), and refuses a request that sets them again.
_SET_BY_HOSTD: Final = frozenset({"MEM_LIMIT", "CPU_LIMIT", "SHELL"})
# Secrets under names that do not say so (JPY_API_TOKEN does; this is belt and braces).
_SECRET_NAMES: Final = frozenset({"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"})
_JUPYTERHUB_DEFAULT_CMD: Final = ["jupyterhub-singleuser"]
_PROGRESS_POLL_S: Final = 0.25
# The wire's table, as JupyterHub answers a refused start (SpawnException.status_code): a
# request it cannot use is 400, a full machine 503 (try later), a failed spawn 500.
SPAWN_STATUS: Final[Mapping[type[HostdError], int]] = MappingProxyType(
    {
        **STATUS_BY_ERROR,
        InvalidInput: 400,
        UnknownProfile: 400,
        CapacityExceeded: 503,
        SpawnFailed: 500,
    }
)

StartPhase = Literal["idle", "requested", "done"]


def spawn_exception(
    message: str, *, reason: str, status_code: int = 400, log_message: str = ""
) -> web.HTTPError:
    """JupyterHub's SpawnException (6.x), or on 5.x an HTTPError that shows the same message.

    Either way ``jupyterhub_message`` is set: what JupyterHub's pages and progress stream show.
    """
    cls = getattr(jupyterhub_spawner, "SpawnException", None)
    error: web.HTTPError
    if cls is not None:
        error = cls(message, reason=reason, status_code=status_code, log_message=log_message)
    else:
        # "%s" keeps a "%" in the message from being read as a format by tornado's str().
        error = web.HTTPError(status_code, "%s", message)
    error.jupyterhub_message = message  # type: ignore[attr-defined]
    return error


def from_hostd_error(exc: HostdError) -> web.HTTPError:
    """The SpawnException for an error of the daemon: its message, its stable code."""
    status = status_for(exc, SPAWN_STATUS)
    message = exc.message
    if isinstance(exc, PermissionDenied):
        message += (
            " (JupyterHub's user must be root, or in the daemon's socket_group, 'hostd', and"
            " named in [daemon] act_for_others of /etc/hostd/hostd.toml)"
        )
    return spawn_exception(
        message, reason=exc.code, status_code=status, log_message=with_session_log(exc)
    )


def with_session_log(exc: HostdError) -> str:
    """The error's message, and for a failed start the last lines the session printed."""
    lines = [str(line) for line in exc.details.get("log") or []]
    if not isinstance(exc, SpawnFailed) or not lines:
        return exc.message
    return exc.message + "\nlast lines of the session's log:\n  " + "\n  ".join(lines)


def split_environment(
    env: Mapping[str, str], *, hub_only: Iterable[str] = ()
) -> tuple[dict[str, str], dict[str, str]]:
    """Spawner.get_env() as hostd takes it: (environment, secrets).

    Secrets are the API tokens and any name that looks like a secret (units.environ): the
    daemon writes them to files. hub_only names variables that describe JupyterHub's own
    process (env_keep: PATH, VIRTUAL_ENV, ...), which a session under the admin's command has
    no use for; they are dropped (but JUPYTERHUB_*, meant for the session), as are those hostd
    sets itself (MEM_LIMIT, CPU_LIMIT, SHELL). Everything else goes in environment, where the
    daemon's allowed_environment judges it.
    """
    dropped = {key for key in hub_only if not key.startswith("JUPYTERHUB_")} | _SET_BY_HOSTD
    environment: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for key, value in env.items():
        if key in _SECRET_NAMES or looks_secret(key):
            secrets[key] = value
        elif key not in dropped:
            environment[key] = value
    return environment, secrets


def policy_conflicts(asked: Mapping[str, object], policy: PolicyView) -> list[str]:
    """The options JupyterHub's config sets (``asked``) that hostd's policy does not match.

    Each value is checked as hostd checks its own config (InvalidInput otherwise); lists of
    paths compare as sets, unit_extra_properties as the D-Bus properties they become.
    """
    wanted = SessionPolicy(cmd=_ANY_CMD, **asked)  # type: ignore[arg-type]
    conflicts = []
    for name in asked:
        hub_value, daemon_value = getattr(wanted, name), getattr(policy, name)
        if name in ("readonly_paths", "readwrite_paths"):
            same = sorted(hub_value) == sorted(daemon_value)
        elif name == "unit_extra_properties":
            same = convert_extra_properties(hub_value) == convert_extra_properties(daemon_value)
            hub_value, daemon_value = dict(hub_value), dict(daemon_value)
        else:
            same = hub_value == daemon_value
        if not same:
            conflicts.append(f"{name} = {_show(hub_value)} (hostd has {_show(daemon_value)})")
    return conflicts


def _show(value: object) -> str:
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


class SystemdSpawner(Configurable):
    """systemdspawner's option names, so ``c.SystemdSpawner.*`` lines keep applying.

    traitlets applies the config sections of a class and of its bases: HostdSpawner derives
    from this class, named as systemdspawner's, so a jupyterhub_config.py written for
    systemdspawner needs only its spawner_class changed. Options only: not a spawner.

    Every option defaults to None, "not set here: hostd's policy decides". A set sandbox option
    must equal the daemon's; options hostd has no equivalent for are refused when set.
    """

    isolate_tmp = Bool(None, allow_none=True, help="A private /tmp (hostd: [session]).").tag(
        config=True
    )
    isolate_devices = Bool(
        None, allow_none=True, help="A /dev without disks (hostd: [session])."
    ).tag(config=True)
    disable_user_sudo = Bool(None, allow_none=True, help="NoNewPrivileges (hostd: [session]).").tag(
        config=True
    )
    user_workingdir = Unicode(
        None, allow_none=True, help="Working directory; {USERNAME}, {USERID} (hostd: [session])."
    ).tag(config=True)
    readonly_paths = List(
        Unicode(), None, allow_none=True, help="ReadOnlyPaths= (hostd: [session])."
    ).tag(config=True)
    readwrite_paths = List(
        Unicode(), None, allow_none=True, help="ReadWritePaths= (hostd: [session])."
    ).tag(config=True)
    default_shell = Unicode(None, allow_none=True, help="SHELL (hostd: [session]).").tag(
        config=True
    )
    unit_extra_properties = Dict(
        default_value=None, allow_none=True, help="Extra unit directives (hostd: [session])."
    ).tag(config=True)
    # systemdspawner options with no hostd equivalent: refused when set, never ignored.
    username_template = Unicode(None, allow_none=True, help="Not supported by hostd.").tag(
        config=True
    )
    unit_name_template = Unicode(None, allow_none=True, help="Not supported by hostd.").tag(
        config=True
    )
    extra_paths = List(Unicode(), None, allow_none=True, help="Not supported by hostd.").tag(
        config=True
    )
    dynamic_users = Bool(None, allow_none=True, help="Not supported by hostd.").tag(config=True)
    slice = Unicode(None, allow_none=True, help="Not supported by hostd.").tag(config=True)


# Why each systemdspawner option without a hostd equivalent is refused (shared with hostctl
# import, which names the same reasons).
_UNSUPPORTED: Final = UNSUPPORTED_SPAWNER_OPTIONS


class HostdSpawner(SystemdSpawner, jupyterhub_spawner.Spawner):  # type: ignore[misc]
    """JupyterHub's Spawner over hostd: one ``jupyter-<user>.service`` per user, made by the
    daemon; JupyterHub needs no root. Register: ``c.JupyterHub.spawner_class = "hostd"``."""

    hostd_socket = Unicode(DEFAULT_SOCKET, help="The daemon's Unix socket.").tag(config=True)
    hostd_command = Unicode(
        DEFAULT_COMMAND,
        help="""The admin's [commands] entry (hostd.toml) that runs jupyterhub-singleuser; it
        must begin with hostd-session-exec so the API token reaches the server. Empty: the
        [session] cmd.""",
    ).tag(config=True)
    hostd_config = Unicode(
        DEFAULT_HOSTD_CONFIG,
        help="""The daemon's config file, named in messages when the daemon does not say which
        file it loaded. Never read: the sandbox options set here are checked against the
        policy the daemon answers (GET /v1/policy), asked only when one of them is set.""",
    ).tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unit: str | None = None  # the unit this spawner started (or was told of)
        self.session_url: str | None = None
        self.started_at: datetime | None = None
        self._phase: StartPhase = "idle"
        self._steps: list[dict[str, Any]] = []

    # -- JupyterHub's interface -----------------------------------------------------------

    @default("options_form")
    def _options_form_default(self) -> Any:
        # KubeSpawner's profile_list, from the daemon (the spawner reads no hostd.toml): the
        # form is made per user at each spawn page; no choices configured: no form at all.
        return _profile_options_form

    async def start(self) -> str:
        self._refuse_what_hostd_does_not_do()
        await self._check_policy()
        user = self.user.name
        try:
            # A named server (JupyterHub's allow_named_servers) is jupyter-<user>:<name>.service
            # (hostd.units.servers); InvalidServerName for a name hostd does not take.
            unit = unit_name_for_key(session_key(user, self.name))
        except HostdError as exc:
            raise from_hostd_error(exc) from exc
        environment, secrets = split_environment(
            self.get_env(),
            hub_only=(key for key in self.env_keep if key not in self.environment),
        )
        # hostd validates it and sets JUPYTERHUB_DEFAULT_URL itself.
        default_url = environment.pop("JUPYTERHUB_DEFAULT_URL", None)
        command = self.hostd_command or None
        profile = self._chosen_profile()
        self._steps = []
        self._phase = "requested"
        self.unit = unit
        self._step(
            10,
            f"Asking hostd to start {unit}"
            + (f" with the admin's command '{command}'" if command else ""),
        )
        try:
            async with HostdClient(self.hostd_socket) as hostd:
                # Where the admin offers choices, the choice decides the limits (as a
                # KubeSpawner profile overrides mem_limit/cpu_limit): the config's own would
                # be refused above a smaller choice's caps.
                chosen = profile is not None or bool(await hostd.profiles(user))
                outcome = await hostd.start(
                    user,
                    mem_limit=None if chosen else self.mem_limit or None,
                    cpu_limit=None if chosen else self.cpu_limit or None,
                    environment=environment,
                    default_url=default_url,
                    command=command,
                    secrets=secrets,
                    profile=profile,
                    server=self.name,
                )
        except HostdError as exc:
            if not isinstance(exc, DaemonUnreachable):
                self.unit = None  # the daemon made nothing, or cleaned up after a failure
            # JupyterHub logs the message alone; the session's last lines go to its log here.
            self.log.warning("hostd: %s", with_session_log(exc))
            raise from_hostd_error(exc) from exc
        finally:
            self._phase = "done"
        session = outcome.session
        if not outcome.created:
            # A session JupyterHub did not start: its API token is not this spawn's, so it
            # could never log in. Left running: it is someone's (hostctl, another hub).
            self.unit = None
            raise spawn_exception(
                f"{user} already has a hostd session{_server_words(self.name)} that this "
                f"JupyterHub did not start (since {session.started_at}); stop it first: "
                f"hostctl stop {user}" + (f" --server {self.name}" if self.name else ""),
                reason="conflict",
                status_code=409,
            )
        if session.url is None:
            raise spawn_exception(
                f"hostd started {unit} but gave no URL", reason="error", status_code=500
            )
        url = session.url
        if url.startswith(UNIX_SOCKET_SCHEME):
            url = await self._hand_over_socket(session.url, command)
        self.session_url, self.started_at = session.url, session.started_at
        self._check_base_url(session.url)
        self._step(90, f"{unit} answers at {session.url}" + _limits_text(session))
        return url

    async def poll(self) -> int | None:
        if self._phase == "requested":
            return None
        if self.unit is None:
            return 0
        try:
            async with HostdClient(self.hostd_socket) as hostd:
                session = await hostd.get(self.user.name, server=self.name)
        except SessionNotFound:
            return 0
        except HostdError as exc:
            # Restarting hostd never stops sessions: unknown is not "ended".
            self.log.warning("hostd: cannot poll %s: %s", self.unit, exc.message)
            return None
        if not self._is_ours(session):
            return 0
        if session.state in ("starting", "running", "stopping"):
            return None
        if session.exit_status is not None:
            return session.exit_status
        return 0 if session.result in (None, "success") else 1

    async def stop(self, now: bool = False) -> None:
        """Stop the session this spawner started; idempotent. ``now`` changes nothing: the
        daemon's stop sends SIGTERM, then SIGKILL after its stop_timeout."""
        if self.unit is None:
            return
        try:
            async with HostdClient(self.hostd_socket) as hostd:
                try:
                    session = await hostd.get(self.user.name, server=self.name)
                except SessionNotFound:
                    return
                if self._is_ours(session) and session.state not in ("stopped", "failed"):
                    started = time.monotonic()
                    await hostd.stop(self.user.name, server=self.name)
                    # JupyterHub logs its whole stop ("server took ... to stop"): this says
                    # which part of it was the daemon's (the unit gone).
                    self.log.info(
                        "hostd: %s stopped in %.3f s", self.unit, time.monotonic() - started
                    )
        except HostdError as exc:
            raise from_hostd_error(exc) from exc

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        if self.unit is not None:
            state["hostd"] = {
                "unit": self.unit,
                "url": self.session_url,
                "started_at": self.started_at.isoformat() if self.started_at else None,
            }
        return state

    def load_state(self, state: Mapping[str, Any]) -> None:
        super().load_state(state)
        saved = state.get("hostd")
        if not isinstance(saved, Mapping) or not isinstance(saved.get("unit"), str):
            return
        self.unit = saved["unit"]
        self.session_url = saved.get("url")
        if isinstance(self.session_url, str) and self.session_url.startswith(UNIX_SOCKET_SCHEME):
            # A restarted JupyterHub rebuilds the server from its database, which keeps no
            # connect_url: without it, the route it checks and fixes would be the broken one.
            self._pin_connect_url(socket_connect_url(self.session_url))
        started_at = saved.get("started_at")
        with contextlib.suppress(TypeError, ValueError):
            self.started_at = datetime.fromisoformat(started_at) if started_at else None

    def clear_state(self) -> None:
        super().clear_state()
        self.unit = self.session_url = self.started_at = None
        self._phase = "idle"

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """The start as the daemon reports it: requested, the unit started by systemd and
        waiting for its server, the server answering; ends when start() returns or fails."""
        sent = 0
        seen: str | None = None
        deadline = asyncio.get_running_loop().time() + float(self.start_timeout)
        async with HostdClient(self.hostd_socket) as hostd:
            while asyncio.get_running_loop().time() < deadline:
                for step in self._steps[sent:]:
                    yield step
                sent = len(self._steps)
                if self._phase == "done":
                    return
                if self._phase == "requested":
                    event = await self._daemon_step(hostd, seen)
                    if event is not None:
                        seen = event.pop("state")
                        yield event
                await asyncio.sleep(_PROGRESS_POLL_S)

    # -- helpers --------------------------------------------------------------------------

    async def _hand_over_socket(self, url: str, command: str | None) -> str:
        """The URL JupyterHub gets for a session on a Unix socket (pinned as connect_url), or,
        when this JupyterHub cannot connect to it, the session stopped and a clear refusal."""
        if tuple(jupyterhub_version[:2]) < SOCKETS_FROM:
            version = ".".join(str(part) for part in jupyterhub_version[:3])
            await self._stop_and_refuse(
                f"hostd started {self._unit_name()} on a Unix socket, which "
                f"JupyterHub {version} cannot connect to (JupyterHub 6 with "
                "configurable-http-proxy 5.3 can): give HostdSpawner a [commands] entry that "
                f"listens on {{PORT}} (hostd_command; now {command or '[session] cmd'})"
            )
        path = unquote(urlparse(url).netloc)
        try:
            # As JupyterHub and its proxy will (they run as this process's user): without the
            # proxy group, each try fails with EACCES until http_timeout, and the log says
            # only "Failed to connect".
            _, writer = await asyncio.open_unix_connection(path)
        except PermissionError:
            await self._stop_and_refuse(
                f"JupyterHub's user cannot connect to {path}, where hostd started "
                f"{self._unit_name()}: it must be in the daemon's [daemon] "
                f"proxy_group ({self.hostd_config}; usermod -aG <group> <JupyterHub's user>, "
                "then restart JupyterHub)",
                reason="permission-denied",
            )
        except OSError:
            pass  # anything else, JupyterHub's own check of the server says
        else:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        connect_url = socket_connect_url(url)
        self._pin_connect_url(connect_url)
        return connect_url

    def _unit_name(self) -> str:
        return unit_name_for_key(session_key(self.user.name, self.name))

    async def _stop_and_refuse(self, message: str, *, reason: str = "error") -> NoReturn:
        # A session JupyterHub cannot reach is not left running for nothing.
        async with HostdClient(self.hostd_socket) as hostd:
            await hostd.stop(self.user.name, server=self.name)
        self.unit = None
        raise spawn_exception(message, reason=reason, status_code=500)

    def _pin_connect_url(self, connect_url: str) -> None:
        # User.spawn reads start()'s URL with urlparse: the socket's path lowercased, port 80,
        # so Server.host would be "http+unix://%2frun...sock:80", and configurable-http-proxy
        # (lib/configproxy.js, proxyOptsForTarget: socketPath = decodeURIComponent(host)) would
        # connect to ".../jupyter.sock:80". Server.host and .url take connect_url as it is.
        if self.server is not None:
            self.server.connect_url = connect_url

    def _step(self, progress: int, message: str) -> None:
        self._steps.append({"progress": progress, "message": message})

    async def _daemon_step(self, hostd: HostdClient, seen: str | None) -> dict[str, Any] | None:
        """An event when the session's state changed since ``seen``; None otherwise. Only a
        starting or running session is this start's (an ended one is the previous)."""
        try:
            session = await hostd.get(self.user.name, server=self.name)
        except HostdError:
            return None
        if session.state == seen or session.state not in ("starting", "running"):
            return None
        port = urlparse(session.url).port if session.url else None
        where = f"port {port}" if port is not None else "its socket"
        if session.state == "starting":
            message = (
                f"systemd started {session.unit}{_limits_text(session)}; "
                f"waiting for the server to answer on {where}"
            )
            return {"state": session.state, "progress": 40, "message": message}
        message = f"The server in {session.unit} answers on {where}"
        return {"state": session.state, "progress": 70, "message": message}

    def _is_ours(self, session: SessionView) -> bool:
        """False for a session started after ours (someone restarted it outside JupyterHub)."""
        return (
            self.started_at is None
            or session.started_at is None
            or session.started_at == self.started_at
        )

    def _chosen_profile(self) -> str | None:
        """The slug in user_options: {"profile": "small"} from the API or a 'simple' form,
        {"profile": ["small"]} from JupyterHub's passthrough form data; None: the default.
        The daemon checks it (visibility, caps) whoever sends it."""
        value = (self.user_options or {}).get("profile")
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise spawn_exception(
                "profile: expected the slug of a profile you may choose",
                reason="invalid-option",
            )
        return value

    def _refuse_what_hostd_does_not_do(self) -> None:
        problems = []
        if list(self.cmd) != _JUPYTERHUB_DEFAULT_CMD or self.args:
            problems.append(
                "cmd/args: the session's command is the admin's ([commands] "
                f"{self.hostd_command or '[session] cmd'} in {self.hostd_config})"
            )
        for name, why in _UNSUPPORTED.items():
            if getattr(self, name, None):
                problems.append(f"{name}: {why}")
        if problems:
            raise spawn_exception(
                "hostd cannot do what JupyterHub's config asks: " + "; ".join(problems),
                reason="invalid-option",
            )

    def _asked_policy(self) -> dict[str, object]:
        """The sandbox options JupyterHub's config sets (None: not set)."""
        asked = {name: getattr(self, name) for name in POLICY_OPTIONS}
        return {name: value for name, value in asked.items() if value is not None}

    async def _check_policy(self) -> None:
        asked = self._asked_policy()
        if not asked:
            return
        try:
            async with HostdClient(self.hostd_socket) as hostd:
                policy = await hostd.policy()
        except HostdError as exc:
            raise spawn_exception(
                f"cannot check {', '.join(asked)} against hostd's policy: {exc.message}",
                reason=exc.code,
                status_code=500,
            ) from exc
        where = policy.config_file or self.hostd_config
        try:
            conflicts = policy_conflicts(asked, policy)
        except InvalidInput as exc:
            raise spawn_exception(f"JupyterHub's config: {exc.message}", reason=exc.code) from exc
        if conflicts:
            raise spawn_exception(
                "JupyterHub's config asks for a sandbox that hostd's policy does not give: "
                + "; ".join(conflicts)
                + f". These are set by the daemon's admin in {where} [session] "
                "(then: hostd check-config; systemctl restart hostd); make the two agree, or "
                "remove them from jupyterhub_config.py",
                reason="invalid-option",
            )

    def _check_base_url(self, url: str) -> None:
        expected = getattr(self.server, "base_url", None)
        path = urlparse(url).path
        if expected and path != expected:
            # JupyterHub routes by its own prefix and jupyterhub-singleuser serves
            # JUPYTERHUB_SERVICE_PREFIX, so this works; only hostd's own URLs differ.
            self.log.warning(
                "hostd serves %s under %s, JupyterHub under %s: set [daemon] base_url_prefix "
                "to match JupyterHub's base_url",
                self.user.name,
                path,
                expected,
            )


def socket_connect_url(url: str) -> str:
    """The http+unix URL of a session as JupyterHub 6 and configurable-http-proxy can use it:
    every byte of the socket's path but [a-z0-9._~-] percent-encoded.

    JupyterHub's client finds the path in the URL's host (httpclient.py: unquote(url.host)),
    and yarl lowercases hosts: "/run/Hostd/..." would become "/run/hostd/...". An escape
    survives that ("%48" is "H", "%2f" is "/"); configurable-http-proxy decodes it the same way.
    """
    parsed = urlparse(url)
    path = os.fsencode(unquote(parsed.netloc))
    netloc = "".join(chr(byte) if byte in _CASE_PROOF else f"%{byte:02X}" for byte in path)
    return f"http+unix://{netloc}{parsed.path}"


async def _profile_options_form(spawner: HostdSpawner) -> str:
    """JupyterHub's options_form: one radio button per choice the daemon says the user may
    take ("" when there are none, so JupyterHub spawns at once as before)."""
    try:
        async with HostdClient(spawner.hostd_socket) as hostd:
            choices = await hostd.profiles(spawner.user.name)
    except HostdError as exc:
        raise from_hostd_error(exc) from exc
    return render_profile_form(choices)


def render_profile_form(choices: Iterable[ProfileView]) -> str:
    """The choices as KubeSpawner's form shows them: a name, limits and a description each."""
    rows = []
    for choice in choices:
        slug = html.escape(choice.slug)
        description = (
            f'<div class="text-muted">{html.escape(choice.description)}</div>'
            if choice.description
            else ""
        )
        rows.append(
            f'<div class="radio"><label for="profile-item-{slug}">'
            f'<input type="radio" name="profile" id="profile-item-{slug}" value="{slug}"'
            f"{' checked' if choice.default else ''}> "
            f"<strong>{html.escape(choice.display_name)}</strong> "
            f"<span>{html.escape(describe_limits(choice))}</span>{description}</label></div>"
        )
    if not rows:
        return ""
    legend = "<legend>Choose your server</legend>"
    return f'<fieldset id="hostd-profiles">{legend}{"".join(rows)}</fieldset>'


def _limits_text(session: SessionView) -> str:
    limits = session.limits
    if limits is None:
        return ""
    parts = []
    if limits.mem_limit_bytes is not None:
        parts.append(f"memory {format_size(limits.mem_limit_bytes)}")
    if limits.cpu_limit is not None:
        parts.append(f"{limits.cpu_limit:g} CPU")
    return f" ({', '.join(parts)})" if parts else ""


def _server_words(server: str) -> str:
    return f" (server {server})" if server else ""
