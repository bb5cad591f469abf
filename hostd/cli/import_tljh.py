"""`hostctl import config.yaml`: The Littlest JupyterHub's settings (`tljh-config`'s file,
/opt/tljh/config/config.yaml) for hostd (hostd/ layer, pure: the file's text is given).

TLJH's own defaults are what its users had, so they are carried over where hostd's differ:
idle sessions culled after 600 s, the hub on port 80 (443 with HTTPS). TLJH's JupyterHub user
"alice" is the Linux account "jupyter-alice" (TLJH makes one per user), which is the name that
logs in to hostd's hub with PAM: admin and allowed users are carried over under that name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import yaml

from hostd.cli.import_plan import ImportPlan, ImportRefused

__all__ = ["TLJH_USER_PREFIX", "read_tljh_config"]

TLJH_USER_PREFIX: Final = "jupyter-"
# TLJH's defaults (tljh/config.py, tljh/configurer.py: default) where they matter here.
_CULL_TIMEOUT_S: Final = 600
_HTTP_PORT: Final = 80
_HTTPS_PORT: Final = 443
_DEPTH_MAX: Final = 8
_LIMITS: Final = (("limits.memory", "session.mem_limit"), ("limits.cpu", "session.cpu_limit"))
_USERS: Final = (("users.admin", "auth.admin_users"), ("users.allowed", "daemon.allowed_users"))
_LEFT_OUT: Final[Mapping[str, str]] = {
    "auth": "hostd's hub logs in with PAM (Linux accounts and their passwords): TLJH's "
    "FirstUseAuthenticator users set one with passwd jupyter-NAME",
    "users.banned": "lock the account instead: usermod -L jupyter-NAME",
    "users.extra_user_groups": "add the accounts to the groups yourself: usermod -aG GROUP "
    "jupyter-NAME",
    "user_environment": "hostd's hub opens JupyterLab; software: /opt/hostd/session/bin/pip",
    "base_url": "hostd's hub serves at /",
    "traefik_api": "hostd's hub has no separate proxy",
    "services.configurator": "hostctl config is hostd's configurator",
    "services.cull.every": "hostd checks idleness itself, every few seconds",
    "services.cull.max_age": "hostd stops idle sessions only, never busy ones by age",
    "services.cull.users": "hostd stops sessions; accounts stay",
    "services.cull.concurrency": "hostd stops idle sessions itself, without API calls",
    "services.cull.remove_named_servers": "hostd runs no named servers",
    "https.letsencrypt.staging": "set [hub] acme_directory to Let's Encrypt's staging URL",
}


def _flatten(table: Mapping[str, Any], prefix: str = "", depth: int = 0) -> dict[str, object]:
    """{"limits.memory": "4G", ...}; ImportRefused for nesting no config.yaml has (YAML
    aliases can make a structure that refers to itself)."""
    if depth > _DEPTH_MAX:
        raise ImportRefused(f"nested deeper than {_DEPTH_MAX} levels: not TLJH's config.yaml")
    flat: dict[str, object] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{name}.", depth + 1))
        else:
            flat[name] = value
    return flat


def _accounts(value: object) -> object:
    """TLJH's user names as the Linux accounts TLJH made for them (jupyter-NAME)."""
    if not isinstance(value, list):
        return value  # hostd's check says what is wrong with it
    return [
        f"{TLJH_USER_PREFIX}{name}"
        if isinstance(name, str) and not name.startswith(TLJH_USER_PREFIX)
        else name
        for name in value
    ]


def read_tljh_config(text: str, *, name: str = "config.yaml") -> ImportPlan:
    """The plan of a TLJH config.yaml's text; ImportRefused if it is not a YAML mapping."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ImportRefused(f"{name} is not valid YAML ({exc})".replace("\n", " ")) from None
    except (ValueError, RecursionError) as exc:
        raise ImportRefused(f"{name} cannot be read as YAML ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ImportRefused(f"{name} is not TLJH's config.yaml: expected a mapping of settings")
    flat = _flatten({str(key): value for key, value in data.items()})
    plan = ImportPlan(source="TLJH config.yaml")
    used: set[str] = set()

    def take(key: str) -> object:
        used.add(key)
        return flat.get(key)

    for key, target in (
        ("limits.memory", "session.mem_limit"),
        ("limits.cpu", "session.cpu_limit"),
    ):
        value = take(key)
        if value is not None:
            plan.carry(target, value, key)
    for key, target in (
        ("users.admin", "auth.admin_users"),
        ("users.allowed", "daemon.allowed_users"),
    ):
        value = take(key)
        if value:
            plan.carry(target, _accounts(value), key, merge=True)
            plan.notes.append(f"{key}: TLJH's user NAME is the Linux account jupyter-NAME")
    _culling(plan, take)
    _https(plan, take)
    for key in sorted(set(flat) - used):
        reason = next(
            (why for left, why in _LEFT_OUT.items() if key == left or key.startswith(left + ".")),
            "hostctl import knows no hostd equivalent: check it by hand",
        )
        if flat[key] not in (None, {}, [], ""):
            plan.leave_out(key, reason)
    return plan


def _culling(plan: ImportPlan, take: Any) -> None:
    enabled, timeout = take("services.cull.enabled"), take("services.cull.timeout")
    if enabled is False:
        plan.carry("capacity.idle_timeout", 0, "services.cull.enabled = false")
    elif timeout is not None:
        plan.carry("capacity.idle_timeout", timeout, "services.cull.timeout")
    else:
        plan.carry("capacity.idle_timeout", _CULL_TIMEOUT_S, "services.cull (TLJH's default)")


def _https(plan: ImportPlan, take: Any) -> None:
    enabled = take("https.enabled") is True
    cert, key = take("https.tls.cert"), take("https.tls.key")
    email, domains = take("https.letsencrypt.email"), take("https.letsencrypt.domains")
    http_port, https_port = take("http.port"), take("https.port")
    if not enabled:
        for name, value in (
            ("https.tls.cert", cert),
            ("https.tls.key", key),
            ("https.letsencrypt.domains", domains),
        ):
            if value:
                plan.leave_out(name, "https.enabled is not true: TLJH did not use it either")
        plan.carry(
            "hub.port",
            _HTTP_PORT if http_port is None else http_port,
            "http.port" if http_port is not None else "http.port (TLJH's default)",
        )
        return
    plan.carry(
        "hub.port",
        _HTTPS_PORT if https_port is None else https_port,
        "https.port" if https_port is not None else "https.port (TLJH's default)",
    )
    if domains:
        plan.carry("hub.acme_domains", domains, "https.letsencrypt.domains")
        if email:
            plan.carry("hub.acme_email", email, "https.letsencrypt.email")
        plan.carry(
            "hub.http_port",
            _HTTP_PORT if http_port is None else http_port,
            "http.port" if http_port is not None else "http.port (TLJH's default)",
        )
        if cert or key:
            plan.leave_out("https.tls", "Let's Encrypt gives the certificate (acme_domains)")
    elif cert or key:
        if cert:
            plan.carry("hub.ssl_cert", cert, "https.tls.cert")
        if key:
            plan.carry("hub.ssl_key", key, "https.tls.key")
        plan.notes.append(
            "https.tls: the hub's user (group hostd-hub) must be able to read the key"
        )
    else:
        plan.leave_out("https.enabled", "no certificate: set https.tls or https.letsencrypt")
