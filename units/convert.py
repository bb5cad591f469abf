"""Converters from an admin's directive value to a D-Bus property value (pure; no I/O).

Each takes what a config file holds (bool, int, str, list of str) and returns the plain
Python value for the property's D-Bus signature, or raises an InvalidInput error that names
the value. directives.py adds the directive's name to the message.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from hostd.units._text import has_unsafe_char, show
from hostd.units.errors import InvalidOption, InvalidPath
from hostd.units.paths import validate_path
from hostd.units.sizes import parse_size, parse_timespan_usec

__all__ = [
    "DESCRIPTION_MAX",
    "INFINITY",
    "MS_REC",
    "Converter",
    "bind_paths",
    "choice",
    "count_or_infinity",
    "description",
    "int_range",
    "ip_prefixes",
    "must_stay_on",
    "path_list",
    "size",
    "timespan",
    "to_bool",
    "umask",
]

Converter = Callable[[object], object]

# systemd's uint64 "no limit" (CGROUP_LIMIT_MAX, USEC_INFINITY, RLIM_INFINITY over D-Bus).
INFINITY = 2**64 - 1
# linux/mount.h; systemd reports a recursive bind (its default, "rbind") with this flag.
MS_REC = 16384
DESCRIPTION_MAX = 256

# systemd's parse_boolean() words, systemd.syntax(7).
_TRUE = frozenset({"1", "yes", "y", "true", "t", "on"})
_FALSE = frozenset({"0", "no", "n", "false", "f", "off"})
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
_OCTAL_MODE = re.compile(r"[0-7]{1,4}")


def to_bool(value: object) -> bool:
    """A bool, or one of systemd's boolean words (yes/no, true/false, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise InvalidOption(f"invalid boolean {show(value)}: expected true/false, yes/no, on/off, 1/0")


def must_stay_on(value: object) -> bool:
    """A boolean that may only be true: hostd reads usage through this accounting, and on
    cgroup v1 systemd creates a unit's cgroup in a controller only when it is on."""
    if not to_bool(value):
        raise InvalidOption(f"cannot be {show(value)}: hostd needs this accounting on")
    return True


def size(*, zero: bool = False, infinity: bool = True) -> Converter:
    """Bytes as parse_size reads them; "infinity" is INFINITY; 0 only if zero is allowed."""

    def convert(value: object) -> int:
        if infinity and value == "infinity":
            return INFINITY
        if zero and (value == "0" or (type(value) is int and value == 0)):
            return 0
        return parse_size(value)

    return convert


def int_range(low: int, high: int) -> Converter:
    """An int (or its decimal string) within low..high."""

    def convert(value: object) -> int:
        number = _integer(value)
        if number is None or not low <= number <= high:
            raise InvalidOption(f"invalid value {show(value)}: expected an integer {low}..{high}")
        return number

    return convert


def count_or_infinity(value: object) -> int:
    """A positive count (TasksMax=, LimitNOFILE=), or "infinity"."""
    if value == "infinity":
        return INFINITY
    number = _integer(value)
    if number is None or not 1 <= number < INFINITY:
        raise InvalidOption(f"invalid count {show(value)}: expected a positive integer or infinity")
    return number


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    return None


def choice(*choices: str, booleans: bool = False) -> Converter:
    """One of choices; with booleans, also a boolean, which means "yes" or "no"."""

    def convert(value: object) -> str:
        if isinstance(value, str) and value in choices:
            return value
        if booleans:
            try:
                return "yes" if to_bool(value) else "no"
            except InvalidOption:
                pass
        raise InvalidOption(f"invalid value {show(value)}: expected one of {', '.join(choices)}")

    return convert


def timespan(*, infinity: bool) -> Converter:
    """A positive span as parse_timespan_usec reads it, in µs; "infinity" only if allowed.

    Zero is refused: for these directives systemd reads 0 as "no timeout" (systemd.service(5)),
    which would be a surprise behind an innocent-looking number.
    """

    def convert(value: object) -> int:
        if value == "infinity":
            if infinity:
                return INFINITY
            raise InvalidOption("infinity is not allowed: hostd needs stops to end")
        usec = parse_timespan_usec(value)
        if usec == 0:
            raise InvalidOption(f"invalid time span {show(value)}: 0 means no timeout in systemd")
        return usec

    return convert


def _entries(value: object) -> list[str]:
    """A list of strings; a single string is split on whitespace, as in a unit file."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    raise InvalidOption(f"invalid list {show(value)}: expected a string or a list of strings")


def path_list(value: object) -> list[str]:
    """Absolute, normalised paths (ReadOnlyPaths=, ...): a list, or one whitespace-separated
    string (use a list for paths with spaces)."""
    return [validate_path(path) for path in _entries(value)]


def bind_paths(value: object) -> list[tuple[str, str, bool, int]]:
    """BindPaths= entries "path", "source:destination" or "source:destination:rbind|norbind",
    as the a(ssbt) of source, destination, ignore-if-missing (never) and mount flags."""
    binds: list[tuple[str, str, bool, int]] = []
    for entry in _entries(value):
        source, _, rest = entry.partition(":")
        destination, _, option = rest.partition(":")
        if option not in {"", "rbind", "norbind"}:
            raise InvalidPath(f"invalid bind {show(entry)}: the option must be rbind or norbind")
        binds.append(
            (
                validate_path(source),
                validate_path(destination or source),
                False,
                0 if option == "norbind" else MS_REC,
            )
        )
    return binds


# linux/socket.h address families, as IPAddressDeny='s a(iayu) carries them.
AF_INET = 2
AF_INET6 = 10
# systemd.resource-control(5) IPAddressAllow=: the symbolic names and what they stand for.
_IP_NAMES = {
    "any": ("0.0.0.0/0", "::/0"),
    "localhost": ("127.0.0.0/8", "::1/128"),
    "link-local": ("169.254.0.0/16", "fe80::/64"),
    "multicast": ("224.0.0.0/4", "ff00::/8"),
}


def ip_prefixes(value: object) -> list[tuple[int, bytes, int]]:
    """IPAddressDeny=/IPAddressAllow= entries: addresses ("169.254.169.254", "fd00::1"),
    prefixes ("10.0.0.0/8") or systemd's names (any, localhost, link-local, multicast), as
    the a(iayu) of address family, address bytes and prefix length. A prefix with host
    bits set ("10.0.0.1/8") is refused: it is a typo more often than a wish."""
    prefixes: list[tuple[int, bytes, int]] = []
    for entry in _entries(value):
        for text in _IP_NAMES.get(entry, (entry,)):
            try:
                network = ipaddress.ip_network(text, strict=True)
            except ValueError as exc:
                raise InvalidOption(
                    f"invalid IP address or prefix {show(entry)}: {exc}; expected an address "
                    "(169.254.169.254), a prefix (10.0.0.0/8) or any, localhost, link-local, "
                    "multicast"
                ) from None
            family = AF_INET if network.version == 4 else AF_INET6
            prefix = (family, network.network_address.packed, network.prefixlen)
            if prefix not in prefixes:
                prefixes.append(prefix)
    return prefixes


def umask(value: object) -> int:
    """A file mode creation mask: an int, or an octal string like "0077"."""
    if isinstance(value, bool):
        mask = None
    elif isinstance(value, int):
        mask = value
    elif isinstance(value, str) and _OCTAL_MODE.fullmatch(value.strip()):
        mask = int(value, 8)
    else:
        mask = None
    if mask is None or not 0 <= mask <= 0o777:
        raise InvalidOption(f"invalid umask {show(value)}: expected an octal mode 0000..0777")
    return mask


def description(value: object) -> str:
    """Printable text of 1..DESCRIPTION_MAX characters."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= DESCRIPTION_MAX
        or has_unsafe_char(value)
    ):
        raise InvalidOption(
            f"invalid description {show(value)}: expected 1 to {DESCRIPTION_MAX} printable "
            "characters"
        )
    return value
