"""`hostctl import jupyterhub_config.py`: the settings of a JupyterHub with systemdspawner, read
without running the file (hostd/ layer, pure: the file's text is given).

The admin's file is Python, and `hostctl import` runs as root: executing it would run whatever
it holds with root's rights. It is parsed (``ast``) instead, and only ``c.Class.option = VALUE``
lines whose VALUE is a literal (strings, numbers, booleans, lists, dicts, sets, tuples) are
read; every other statement that sets something is listed as not carried over, with its line.
A later line wins over an earlier one of the same option, as when JupyterHub runs the file.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import urlsplit

from hostd.cli.import_plan import ImportPlan, ImportRefused
from hostd.units.values import SANDBOX_OPTIONS, UNSUPPORTED_SPAWNER_OPTIONS

__all__ = ["CULLERS", "SPAWNER_CLASSES", "read_jupyterhub_config"]

# The classes whose c.<Class>.<option> lines are the spawner's: HostdSpawner reads
# SystemdSpawner's and Spawner's sections (api/spawner.py), and its own.
SPAWNER_CLASSES: Final = ("Spawner", "SystemdSpawner", "HostdSpawner")
_AUTHENTICATORS: Final = ("Authenticator", "LocalAuthenticator", "PAMAuthenticator")
# JupyterHub's idle culler, as a service's command names it (the package, the old script).
CULLERS: Final = ("jupyterhub_idle_culler", "jupyterhub-idle-culler", "cull_idle_servers")
# Spawner options that HostdSpawner takes as JupyterHub's own: they stay in the file.
_KEPT_SPAWNER_OPTIONS: Final = frozenset(
    {
        "default_url",
        "start_timeout",
        "http_timeout",
        "poll_interval",
        "env_keep",
        "debug",
        "consecutive_failure_limit",
        "hostd_socket",
        "hostd_config",
        "hostd_command",
    }
)
_SPAWNER_KEYS: Final[Mapping[str, str]] = {
    "mem_limit": "session.mem_limit",
    "cpu_limit": "session.cpu_limit",
    "environment": "session.environment",
    **{name: f"session.{name}" for name in SANDBOX_OPTIONS},
}
_AUTH_KEYS: Final[Mapping[str, str]] = {
    "admin_users": "auth.admin_users",
    "admin_groups": "auth.admin_groups",
    "allowed_users": "daemon.allowed_users",
    "allowed_groups": "daemon.allowed_groups",
}
_HUB_KEYS: Final[Mapping[str, str]] = {
    "ip": "hub.ip",
    "port": "hub.port",
    "ssl_cert": "hub.ssl_cert",
    "ssl_key": "hub.ssl_key",
}
_JUPYTERHUB_SINGLEUSER: Final = ["jupyterhub-singleuser"]
_SHOWN_MAX: Final = 60
_HOSTD_SPAWNERS: Final = ("hostd", "hostd.api.spawner.HostdSpawner")


def _shown(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "..."


def _option(target: ast.expr) -> tuple[str, str] | None:
    """(Class, option) of a ``c.Class.option`` target; None for anything else."""
    if (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Attribute)
        and isinstance(target.value.value, ast.Name)
        and target.value.value.id == "c"
    ):
        return target.value.attr, target.attr
    return None


def _sets_something(node: ast.stmt) -> bool:
    """Whether a statement that is not ``c.X.y = literal`` may change the config: anything
    but imports, ``c = get_config()``, docstrings and ``pass``."""
    if isinstance(node, ast.Import | ast.ImportFrom | ast.Pass):
        return False
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return False  # a docstring or a bare string
    return not (
        isinstance(node, ast.Assign)
        and [ast.unparse(t) for t in node.targets] == ["c"]
        and ast.unparse(node.value) == "get_config()"
    )


def _plain(value: object) -> object:
    """A literal as TOML can hold it: sets and tuples become sorted or ordered lists."""
    if isinstance(value, set | frozenset):
        return sorted(_plain(item) for item in value)  # type: ignore[type-var]
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


class _Reader:
    def __init__(self, plan: ImportPlan) -> None:
        self.plan = plan
        self.command: object = None  # c.HostdSpawner.hostd_command, if the file sets it

    def statement(self, node: ast.stmt) -> None:
        target = node.targets[0] if isinstance(node, ast.Assign) else None
        option = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and target is not None:
            option = _option(target)
        if option is None:
            if _sets_something(node):
                self.plan.leave_out(
                    f"line {node.lineno}: {_shown(node)}",
                    "not a `c.Class.option = value` line: hostctl import does not run the "
                    "file's Python; carry it over by hand",
                )
            return
        assert isinstance(node, ast.Assign)
        cls, name = option
        origin = f"line {node.lineno}: c.{cls}.{name}"
        if cls == "JupyterHub" and name == "services":
            self.services(node.value, origin)
            return
        try:
            value = _plain(ast.literal_eval(node.value))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            self.plan.leave_out(
                origin,
                f"its value ({_shown(node.value)}) is not a literal: hostctl import does not "
                "run the file's Python; write the value in",
            )
            return
        self.option(cls, name, value, origin)

    def option(self, cls: str, name: str, value: object, origin: str) -> None:
        handlers: Mapping[str, Callable[[str, object, str], None]] = {
            **dict.fromkeys(SPAWNER_CLASSES, self.spawner),
            **dict.fromkeys(_AUTHENTICATORS, self.authenticator),
            "JupyterHub": self.jupyterhub,
        }
        handler = handlers.get(cls)
        if handler is None:
            self.plan.notes.append(f"{origin}: JupyterHub's own, kept in jupyterhub_config.py")
        else:
            handler(name, value, origin)

    def spawner(self, name: str, value: object, origin: str) -> None:
        if name in _SPAWNER_KEYS:
            self.plan.carry(_SPAWNER_KEYS[name], value, origin)
            if name == "environment":
                self.plan.notes.append(
                    f"{origin}: now hostd's [session] environment; if JupyterHub stays, "
                    "remove the line (a start that passes them again is refused)"
                )
        elif name in UNSUPPORTED_SPAWNER_OPTIONS:
            self.plan.leave_out(
                origin,
                f"{UNSUPPORTED_SPAWNER_OPTIONS[name]}; HostdSpawner refuses a start while it "
                "is set: remove the line",
            )
        elif name in ("cmd", "args"):
            if name == "cmd" and value in (_JUPYTERHUB_SINGLEUSER, "jupyterhub-singleuser"):
                return  # JupyterHub's default, which [commands] singleuser runs
            self.plan.leave_out(
                origin,
                "the session's command is the admin's ([commands] singleuser in hostd.toml); "
                "HostdSpawner refuses a start while it is set: put the program and its "
                "arguments in [commands] singleuser, after hostd-session-exec, and remove the "
                "line",
            )
        elif name == "hostd_command":
            self.command = value
        elif name in _KEPT_SPAWNER_OPTIONS:
            self.plan.notes.append(f"{origin}: JupyterHub's own, kept in jupyterhub_config.py")
        else:
            self.plan.leave_out(
                origin, "hostctl import knows no hostd equivalent: check it by hand"
            )

    def authenticator(self, name: str, value: object, origin: str) -> None:
        if name in _AUTH_KEYS:
            self.plan.carry(_AUTH_KEYS[name], value, origin, merge=True)
        else:
            self.plan.notes.append(f"{origin}: JupyterHub's own, kept in jupyterhub_config.py")

    def jupyterhub(self, name: str, value: object, origin: str) -> None:
        if name in _HUB_KEYS:
            self.plan.carry(_HUB_KEYS[name], value, origin)
        elif name == "bind_url" and isinstance(value, str):
            self.bind_url(value, origin)
        elif name == "spawner_class":
            if value not in _HOSTD_SPAWNERS:
                self.plan.notes.append(
                    f'{origin}: change it to "hostd" to keep this JupyterHub with hostd '
                    "(README: JupyterHub: from systemdspawner in one line)"
                )
        else:
            self.plan.notes.append(f"{origin}: JupyterHub's own, kept in jupyterhub_config.py")

    def bind_url(self, url: str, origin: str) -> None:
        """c.JupyterHub.bind_url = "http://IP:PORT/": the hub's ip and port."""
        parsed = urlsplit(url)
        try:
            port = parsed.port
        except ValueError:
            port = None
        if parsed.scheme not in ("http", "https") or parsed.path not in ("", "/") or not port:
            self.plan.leave_out(
                origin, "only http://IP:PORT/ carries over (hostd's hub serves at /)"
            )
            return
        self.plan.carry("hub.ip", parsed.hostname or "", origin)
        self.plan.carry("hub.port", port, origin)

    def services(self, node: ast.expr, origin: str) -> None:
        """c.JupyterHub.services: the idle culler's literal arguments, if it is one of them."""
        culler = None
        if isinstance(node, ast.List | ast.Tuple):
            for service in node.elts:
                command = _command_of(service)
                if command is not None and any(c in part for part in command for c in CULLERS):
                    culler = command
        if culler is None:
            self.plan.notes.append(
                f"{origin}: JupyterHub's own (no idle culler found), kept in jupyterhub_config.py"
            )
            return
        _read_culler_args(self.plan, culler, origin)


def _command_of(service: ast.expr) -> list[str] | None:
    """The literal strings of a service's ``command`` (a non-literal part, such as
    sys.executable, is left out); None if it has none."""
    if not isinstance(service, ast.Dict):
        return None
    for key, value in zip(service.keys, service.values, strict=True):
        if isinstance(key, ast.Constant) and key.value == "command":
            if not isinstance(value, ast.List | ast.Tuple):
                return None
            return [
                part.value
                for part in value.elts
                if isinstance(part, ast.Constant) and isinstance(part.value, str)
            ]
    return None


# jupyterhub-idle-culler's options that hostd has no equivalent of, and why.
_CULLER_LEFT_OUT: Final[Mapping[str, str]] = {
    "--cull-every": "hostd checks idleness itself, every few seconds",
    "--max-age": "hostd stops idle sessions only, never busy ones by age",
    "--cull-users": "hostd stops sessions; JupyterHub's users are JupyterHub's",
    "--remove-named-servers": "hostd keeps nothing of a stopped named server to remove",
    "--concurrency": "hostd stops idle sessions itself, without API calls",
    "--cull-admin-users": "hostd treats every user's session alike",
}


def _read_culler_args(plan: ImportPlan, command: list[str], origin: str) -> None:
    args = iter(command)
    found = False
    for arg in args:
        name, sep, value = arg.partition("=")
        if not name.startswith("--"):
            continue
        if not sep and name in ("--timeout", "--cull-every", "--max-age", "--concurrency"):
            value = next(args, "")
        if name == "--timeout":
            found = True
            try:
                plan.carry("capacity.idle_timeout", int(value), f"{origin} {name}")
            except ValueError:
                plan.leave_out(f"{origin} {name}", f"not a number of seconds: {value!r}")
        elif name in _CULLER_LEFT_OUT:
            plan.leave_out(f"{origin} {name}", _CULLER_LEFT_OUT[name])
    if not found:
        # jupyterhub-idle-culler's default timeout is 600 s.
        plan.carry("capacity.idle_timeout", 600, f"{origin} (the culler's default --timeout)")
    plan.notes.append(
        f"{origin}: hostd stops idle sessions itself ([capacity] idle_timeout); the culler "
        "service may stay if JupyterHub stays"
    )


def read_jupyterhub_config(text: str, *, name: str = "jupyterhub_config.py") -> ImportPlan:
    """The plan of a jupyterhub_config.py's text; ImportRefused if it is not Python."""
    try:
        tree = ast.parse(text, filename=name)
    except SyntaxError as exc:
        where = f"line {exc.lineno}: " if exc.lineno else ""
        raise ImportRefused(f"{name} is not valid Python ({where}{exc.msg})") from None
    except (ValueError, MemoryError, RecursionError) as exc:  # NUL bytes, absurd nesting
        raise ImportRefused(f"{name} cannot be read as Python ({exc})") from None
    plan = ImportPlan(source="jupyterhub_config.py")
    reader = _Reader(plan)
    for node in tree.body:
        reader.statement(node)
    if reader.command is not None:
        if isinstance(reader.command, str) and reader.command:
            plan.notes.append(f"the command is [commands] {reader.command} (hostd_command)")
        else:
            plan.leave_out("c.HostdSpawner.hostd_command", "expected a command's name")
    command_name = reader.command if isinstance(reader.command, str) and reader.command else ""
    plan.command_name = command_name or "singleuser"
    return plan
