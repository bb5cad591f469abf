"""The ``[session]`` section: the policy every session unit is built from.

The keys are hostd.units.SessionPolicy's fields, read from the dataclass rather than listed
here, so an option added to the policy is a [session] key at once; they are systemdspawner's
option names (mem_limit, cpu_limit, isolate_tmp, ...). SessionPolicy does the checking; this
module only makes it report every problem instead of the first. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from hostd.config.document import Problems, SectionKeys, dotted, without_prefix
from hostd.units import SessionPolicy, parse_cpu, parse_size
from hostd.units.errors import InvalidInput

__all__ = [
    "DEFAULT_SESSION_CMD",
    "SESSION_KEYS",
    "SESSION_NOT_SETTABLE",
    "parse_session",
]

DEFAULT_SESSION_CMD = (
    "/opt/hostd/session/bin/jupyter",
    "lab",
    "--no-browser",
    # A Unix socket in a directory only the user and the hub's identity can reach: no port
    # on the loopback that any local account could take first (issue 13).
    "--ServerApp.sock={SOCKET}",
    "--ServerApp.sock_mode=0660",
    "--ServerApp.base_url={BASE_URL}",
)
# Every SessionPolicy option is a [session] key of the same name, but stop_timeout_usec,
# which [daemon] stop_timeout sets: the daemon waits that long for a stop too.
SESSION_KEYS = tuple(f.name for f in fields(SessionPolicy) if f.name != "stop_timeout_usec")
SESSION_NOT_SETTABLE = {
    ("session", "stop_timeout_usec"): "set from [daemon] stop_timeout (in seconds)",
}
_CAPS = ("max_mem_limit", "max_cpu_limit")


def _probe(key: str, value: object) -> None:
    """Check one [session] option on its own; raises InvalidInput."""
    # The caps are checked against mem_limit/cpu_limit once all options are in (parse_session).
    if key == "max_mem_limit":
        parse_size(value)
    elif key == "max_cpu_limit":
        parse_cpu(value)
    else:
        options: dict[str, Any] = {"cmd": DEFAULT_SESSION_CMD, key: value}
        SessionPolicy(**options)


def parse_session(
    table: Mapping[str, Any], keys: SectionKeys, stop_timeout_s: float, problems: Problems
) -> SessionPolicy | None:
    """The SessionPolicy for [session], or None after adding every problem it has.

    SessionPolicy stops at its first problem, so each option is checked on its own first
    (each unit_extra_properties entry too), then the ones that passed together.
    """
    good: dict[str, Any] = {}
    for key, value in table.items():
        if not keys.known("session", key, problems):
            continue
        if key == "unit_extra_properties" and isinstance(value, dict) and value:
            entries_ok = True
            for name, entry in value.items():
                try:
                    _probe(key, {name: entry})
                except InvalidInput as exc:
                    entries_ok = False
                    message = without_prefix(exc.message, key, name)
                    problems.append((dotted("session", key, name), message))
            if entries_ok:
                good[key] = value
            continue
        try:
            _probe(key, value)
        except InvalidInput as exc:
            problems.append((dotted("session", key), without_prefix(exc.message, key)))
        else:
            good[key] = value
    # A cap cannot be judged against a limit that did not parse.
    for limit in ("mem_limit", "cpu_limit"):
        if limit in table and limit not in good:
            good.pop(f"max_{limit}", None)
    good.setdefault("cmd", DEFAULT_SESSION_CMD)
    try:
        policy = SessionPolicy(**good, stop_timeout_usec=round(stop_timeout_s * 1_000_000))
    except InvalidInput as exc:
        # Only the checks across options are left: "max_mem_limit needs mem_limit: ...".
        cap = next((cap for cap in _CAPS if exc.message.startswith(cap)), None)
        problems.append((f"session.{cap}" if cap else "session", exc.message))
        return None
    return policy
