"""The hub's configuration: /etc/hostd/hub.toml, read and checked once at start-up (api layer).

``load_hub_config`` reads the file (when it exists) and returns a frozen ``HubConfig``; command
line options (``--ip``, ``--port``, ``--ssl-cert``, ``--ssl-key``) override it through
``overrides``, checked by the same rules. A wrong file fails with one ConfigError that lists
every problem by dotted TOML key (``hub.port``), as hostd.config does for the daemon.

Nothing here is secret: the cookie key lives in its own 0600 file (``cookie_secret_file``),
read by hostd.api.hub.security.load_or_create_secret into a ``Secret`` whose repr is masked.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from hostd.units._text import has_unsafe_char, show
from hostd.units.checks import (
    LogLevel,
    check_duration,
    check_log_level,
    check_optional_path,
    check_path,
    check_whole_number,
)
from hostd.units.errors import ConfigError, InvalidInput, InvalidOption

__all__ = [
    "ACCOUNT_CHECK_MAX_S",
    "DEFAULT_HUB_CONFIG_PATH",
    "DEFAULT_PORT",
    "HUB_KEYS",
    "LETS_ENCRYPT",
    "HubConfig",
    "load_hub_config",
    "parse_hub_config",
]

DEFAULT_HUB_CONFIG_PATH: Final = Path("/etc/hostd/hub.toml")
DEFAULT_PORT: Final = 8000  # JupyterHub's
_TIMEOUT_MAX_S: Final = 3600.0
ACCOUNT_CHECK_MAX_S: Final = 60.0
# Let's Encrypt's production directory (RFC 8555 §7.1.1), the default of acme_directory.
LETS_ENCRYPT: Final = "https://acme-v02.api.letsencrypt.org/directory"
# Let's Encrypt's certificates last 90 days (45 from 2028): a threshold of 60 days or more
# would renew at every check and soon meet its rate limit of 5 identical certificates a week.
_RENEW_DAYS_MAX: Final = 59.0
_ACME_CHECK_MAX_S: Final = 86400.0
_COMMAND_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


def _ip(value: object) -> str:
    # "" is every interface, as JupyterHub's c.JupyterHub.ip = "" means.
    if value == "":
        return ""
    if not isinstance(value, str):
        raise InvalidOption(f'expected an IP address or "", not {show(value)}')
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidOption(
            f'expected an IP address like 127.0.0.1 or "", not {show(value)}'
        ) from None


def _port(value: object) -> int:
    return check_whole_number(value, low=1, high=65535, what="a port number")


def _seconds(value: object) -> float:
    return check_duration(value, at_most=_TIMEOUT_MAX_S, zero_ok=True)


def _days(value: object) -> float:
    return check_duration(value, at_most=366, unit="days")


def _db_url(value: object) -> str:
    if not isinstance(value, str) or has_unsafe_char(value) or len(value) > 1024:
        raise InvalidOption(f"expected a database URL like sqlite:////path, not {show(value)}")
    if value and "://" not in value:
        raise InvalidOption(f"expected a database URL like sqlite:////path, not {show(value)}")
    return value


def _account_check_interval(value: object) -> float:
    # The hub promises that a locked account or a lost admin right stops working within 60 s.
    return check_duration(value, at_most=ACCOUNT_CHECK_MAX_S)


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidOption(f"expected true or false, not {show(value)}")
    return value


def _command(value: object) -> str | None:
    # A name from the daemon's [commands]; the daemon checks that it exists.
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or set(value) - _COMMAND_CHARS:
        raise InvalidOption(f"expected a name from the daemon's [commands], not {show(value)}")
    return value


def _addresses(value: object) -> tuple[str, ...]:
    # uvicorn's forwarded_allow_ips; "*" believes every peer (only behind a firewall).
    if not isinstance(value, list | tuple) or "" in value:
        raise InvalidOption(f'expected a list of IP addresses (or "*"), not {show(value)}')
    return tuple(item if item == "*" else _ip(item) for item in value)


_HOST_NAME: Final = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}")


def _subdomain_host(value: object) -> str:
    """``subdomain_host``: "" (off) or an origin, "https://hub.example.org[:port]"; the
    normalised origin. InvalidOption otherwise."""
    if value == "":
        return ""
    if not isinstance(value, str):
        raise InvalidOption(f"expected an origin like https://hub.example.org, not {show(value)}")
    parts = urlsplit(value.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = (parts.hostname or "").lower()
    if (
        parts.scheme not in ("http", "https")
        or not _HOST_NAME.fullmatch(host)
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or port == -1
    ):
        raise InvalidOption(
            f"expected an origin like https://hub.example.org (scheme, host, optional port), "
            f"not {show(value)}"
        )
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _acme_domains(value: object) -> tuple[str, ...]:
    # HTTP-01 proves control of a name, one at a time: no wildcard (that needs DNS-01).
    if not isinstance(value, list | tuple):
        raise InvalidOption(
            f'expected a list of host names like ["hub.example.org"], not {show(value)}'
        )
    names: list[str] = []
    for item in value:
        name = item.strip().lower().rstrip(".") if isinstance(item, str) else item
        if not isinstance(name, str) or len(name) > 253 or not _HOST_NAME.fullmatch(name):
            raise InvalidOption(
                f"expected host names like hub.example.org (no wildcard: HTTP-01 cannot prove "
                f"one), not {show(item)}"
            )
        if name not in names:
            names.append(name)
    return tuple(names)


_EMAIL: Final = re.compile(r"[^@\s:,<>]+@[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


def _email(value: object) -> str:
    # The ACME account's contact (mailto:); "" registers without one.
    if value == "":
        return ""
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.fullmatch(value.strip()):
        raise InvalidOption(f"expected an e-mail address like admin@example.org, not {show(value)}")
    return value.strip()


def _https_url(value: object) -> str:
    if not isinstance(value, str) or has_unsafe_char(value) or len(value) > 1024:
        raise InvalidOption(f"expected an https:// URL, not {show(value)}")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidOption(f"expected an https:// URL (RFC 8555 needs HTTPS), not {show(value)}")
    return value


def _renew_days(value: object) -> float:
    return check_duration(value, at_most=_RENEW_DAYS_MAX, unit="days")


def _acme_check_interval(value: object) -> float:
    return check_duration(value, at_most=_ACME_CHECK_MAX_S)


# Field name -> check; each TOML key of [hub] is the field's name.
_CHECKS: dict[str, Callable[[object], object]] = {
    "ip": _ip,
    "port": _port,
    "ssl_cert": check_optional_path,
    "ssl_key": check_optional_path,
    "hostd_socket": check_path,
    "state_dir": check_path,
    "db_url": _db_url,
    "cookie_secret_file": check_optional_path,
    "cookie_max_age_days": _days,
    "token_max_age_days": _days,
    "account_check_interval": _account_check_interval,
    "admin_access": _bool,
    "slow_spawn_timeout": _seconds,
    "slow_stop_timeout": _seconds,
    "activity_interval": _seconds,
    "command": _command,
    "trusted_proxies": _addresses,
    "subdomain_host": _subdomain_host,
    "metrics_public": _bool,
    "acme_domains": _acme_domains,
    "acme_email": _email,
    "acme_directory": _https_url,
    "acme_ca_bundle": check_optional_path,
    "acme_renew_days": _renew_days,
    "acme_check_interval": _acme_check_interval,
    "http_port": _port,
    "log_level": check_log_level,
}


@dataclass(frozen=True, kw_only=True)
class HubConfig:
    """The ``[hub]`` section, checked and normalised when made (ConfigError lists problems).

    Paths left empty take their place under ``state_dir``: ``database_url`` and
    ``cookie_secret_path`` say where.
    """

    ip: str = ""
    port: int = DEFAULT_PORT
    # Both or neither: HTTPS served directly by the hub (uvicorn's ssl), as seed 000's
    # `jupyterhub --ssl-key ... --ssl-cert ...`. The session cookie is then Secure.
    ssl_cert: Path | None = None
    ssl_key: Path | None = None
    hostd_socket: Path = Path("/run/hostd/hostd.sock")
    # The hub's own directory, 0700 and owned by the hub's user (hostd-hub.service's
    # StateDirectory=): not /var/lib/hostd, which is root's (the daemon's history); a user
    # that may write a directory may also rename or delete every file in it.
    state_dir: Path = Path("/var/lib/hostd-hub")
    db_url: str = ""
    cookie_secret_file: Path | None = None
    cookie_max_age_days: float = 14.0  # JupyterHub's
    # An API token lives this long unless made with a shorter ``expires_in`` (JupyterHub's
    # POST .../tokens field, in seconds), which may not ask for longer: no token is forever.
    token_max_age_days: float = 30.0
    # Seconds a cookie's or token's account check (locked, expired, re-created, admin) is
    # believed before the hub asks the daemon again; at most ACCOUNT_CHECK_MAX_S.
    account_check_interval: float = ACCOUNT_CHECK_MAX_S
    # Admins may open other users' servers through /user/<name>/ (JupyterHub's admin_access).
    admin_access: bool = False
    # How long POST .../server waits for a start (or DELETE for a stop) before answering 202.
    slow_spawn_timeout: float = 10.0
    slow_stop_timeout: float = 10.0
    # At most one activity report to the daemon per user in this many seconds.
    activity_interval: float = 30.0
    command: str | None = None
    # Peers whose X-Forwarded-For/-Proto are believed (a TLS-terminating nginx on this host).
    trusted_proxies: tuple[str, ...] = ()
    # JupyterHub's subdomain_host: "https://hub.example.org" serves each user's server at
    # https://<name>.hub.example.org/user/<name>/, an origin of its own (hostd.api.hub.
    # subdomains); "" serves them under the hub's own origin.
    subdomain_host: str = ""
    # /hub/metrics without a token (JupyterHub's authenticate_prometheus = False): for a
    # Prometheus that cannot send one. Off, only an admin's token or cookie reads it.
    metrics_public: bool = False
    # HTTPS by itself (hostd.api.hub.acme): with names here the hub gets its certificate over
    # ACME (HTTP-01, answered on http_port) and keeps it renewed; ssl_cert/ssl_key then stay
    # unset. Keys and certificate live in state_dir/acme, the hub's own.
    acme_domains: tuple[str, ...] = ()
    acme_email: str = ""
    acme_directory: str = LETS_ENCRYPT
    # Certificates the ACME directory's own HTTPS is checked against (a private CA, pebble's
    # test server); None: the system's.
    acme_ca_bundle: Path | None = None
    # Renew when fewer days than this remain (certbot's 30); checked every acme_check_interval
    # seconds, and retried sooner after a failure.
    acme_renew_days: float = 30.0
    acme_check_interval: float = 43200.0
    # The plain HTTP listener of ACME mode: challenges, and a redirect to https for the rest.
    http_port: int = 80
    log_level: LogLevel = "info"

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        for name, check in _CHECKS.items():
            try:
                object.__setattr__(self, name, check(getattr(self, name)))
            except InvalidInput as exc:
                problems.append((f"hub.{name}", exc.message))
        if (self.ssl_cert is None) != (self.ssl_key is None):
            problems.append(
                ("hub.ssl_cert", "ssl_cert and ssl_key go together: set both or neither")
            )
        if self.acme_domains and self.ssl_cert is not None:
            problems.append(
                (
                    "hub.acme_domains",
                    "acme_domains and ssl_cert/ssl_key both say where the certificate comes "
                    "from: set one or the other",
                )
            )
        if self.acme_domains and self.http_port == self.port:
            problems.append(
                ("hub.http_port", f"the HTTPS port is {self.port} too: give HTTP its own (80)")
            )
        if problems:
            raise ConfigError(problems)

    @property
    def tls(self) -> bool:
        return self.ssl_cert is not None or self.acme

    @property
    def acme(self) -> bool:
        """The certificate comes from ACME (hostd.api.hub.acme), not from the admin."""
        return bool(self.acme_domains)

    @property
    def acme_dir(self) -> Path:
        return self.state_dir / "acme"

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.state_dir / 'hub.sqlite'}"

    @property
    def cookie_secret_path(self) -> Path:
        return self.cookie_secret_file or self.state_dir / "cookie_secret"

    @property
    def cookie_max_age_s(self) -> int:
        return int(self.cookie_max_age_days * 86400)

    @property
    def token_max_age_s(self) -> int:
        return int(self.token_max_age_days * 86400)


# The keys of [hub] (also `hostctl config`'s, as hub.<key>).
HUB_KEYS = tuple(f.name for f in fields(HubConfig))


def parse_hub_config(
    data: Mapping[str, Any], *, overrides: Mapping[str, Any] | None = None
) -> HubConfig:
    """The config from a parsed TOML document and command-line ``overrides`` (a value of
    None: not given); ConfigError naming every problem."""
    problems: list[tuple[str, str]] = []
    for key, value in data.items():
        if key != "hub":
            problems.append((key, "unknown section: the hub's options go in [hub]"))
        elif not isinstance(value, dict):
            problems.append((key, "expected a table: [hub]"))
    section = data.get("hub", {})
    options: dict[str, Any] = {}
    if isinstance(section, dict):
        for key, value in section.items():
            if key in HUB_KEYS:
                options[key] = value
                continue
            hints = difflib.get_close_matches(key, HUB_KEYS, n=3)
            hint = f"; did you mean {', '.join(hints)}?" if hints else ""
            problems.append((f"hub.{key}", f"unknown key{hint}"))
    options.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        config = HubConfig(**options)
    except ConfigError as exc:
        problems.extend(exc.problems)
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def load_hub_config(path: Path | None = None, *, overrides: Mapping[str, Any] = {}) -> HubConfig:
    """Read ``path`` (default: DEFAULT_HUB_CONFIG_PATH if it exists, else the defaults)."""
    if path is None:
        path = DEFAULT_HUB_CONFIG_PATH if DEFAULT_HUB_CONFIG_PATH.exists() else None
    if path is None:
        return parse_hub_config({}, overrides=overrides)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError([(str(path), f"cannot read: {exc.strerror or exc}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([(str(path), f"not valid TOML: {exc}")]) from exc
    return parse_hub_config(data, overrides=overrides)
