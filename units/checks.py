"""Value checks shared by the config files: hostd.toml and hub.toml (pure layer; no I/O).

Each check takes whatever a TOML file (or a caller in code) handed over, returns the value
normalised (a tuple for a list, a float for seconds, a Path for a path) or raises an
InvalidInput subclass whose message says what was expected and what came. The config parsers
(hostd.config's section modules, hostd.api.hub.settings) key that message by the option's
dotted name; the checks themselves know nothing of files or sections.

pathlib is here for the type only: nothing in this module touches the file system.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, cast, get_args

from hostd.units._text import has_unsafe_char, show
from hostd.units.errors import InvalidName, InvalidOption
from hostd.units.names import validate_username
from hostd.units.paths import validate_path

__all__ = [
    "GROUP_NAME_MAX",
    "LOG_LEVELS",
    "LogLevel",
    "check_duration",
    "check_group_name",
    "check_group_names",
    "check_log_level",
    "check_optional_path",
    "check_path",
    "check_port_range",
    "check_user_names",
    "check_whole_number",
]

LogLevel = Literal["debug", "info", "warning", "error"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
# No NSS limit to copy: glibc takes any length; 256 bounds what a message and a log line show.
GROUP_NAME_MAX = 256


def _number_text(number: float) -> str:
    # 86400.0 as "86400" and 2592000 as "2592000", not "2.592e+06" as :g would.
    return f"{number:.15g}"


def check_path(value: object) -> Path:
    """An absolute, normalised path (units.paths.validate_path's rules); a Path is taken too."""
    return Path(validate_path(str(value) if isinstance(value, Path) else value))


def check_optional_path(value: object) -> Path | None:
    """check_path, but None or "" (a TOML file cannot write None) mean "not set": None."""
    if value is None or value == "":
        return None
    return check_path(value)


def check_group_name(value: object) -> str:
    """A group name as NSS may hand it out; raises InvalidName.

    Wider than a user name on purpose: sssd gives out group names with spaces ("domain
    users"). Only what cannot be in one is out: ":" (it separates /etc/group's fields), blanks
    around it, control and invisible characters.
    """
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= GROUP_NAME_MAX
        or ":" in value
        or value != value.strip()
        or has_unsafe_char(value)
    ):
        raise InvalidName(f"expected a group name like 'users', not {show(value)}")
    return value


def check_group_names(value: object) -> tuple[str, ...]:
    """A list of group names (check_group_name each), as a tuple."""
    if not isinstance(value, list | tuple):
        raise InvalidOption(f"expected a list of group names, not {show(value)}")
    return tuple(check_group_name(item) for item in value)


def check_user_names(value: object) -> tuple[str, ...]:
    """A list of login names (units.names.validate_username each), as a tuple."""
    if not isinstance(value, list | tuple):
        raise InvalidOption(f"expected a list of user names, not {show(value)}")
    return tuple(validate_username(item) for item in value)


def check_duration(
    value: object, *, at_most: float, zero_ok: bool = False, unit: str = "seconds"
) -> float:
    """A number of seconds (or of ``unit``) up to at_most, and above 0 unless zero_ok.

    at_most is a sanity bound: a value past it is a mistake of unit (ms written for s, say).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidOption(f"expected a number of {unit}, not {show(value)}")
    # Compared before float(): a huge int would overflow it; NaN fails every comparison.
    if zero_ok and not 0 <= value <= at_most:
        raise InvalidOption(f"expected 0 to {_number_text(at_most)} {unit}, not {show(value)}")
    if not zero_ok and not 0 < value <= at_most:
        raise InvalidOption(
            f"expected more than 0 and at most {_number_text(at_most)} {unit}, not {show(value)}"
        )
    return float(value)


def check_whole_number(value: object, *, low: int, high: int, what: str = "a whole number") -> int:
    """An int from low to high; what names it in the message ("a port number")."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidOption(f"expected {what} from {low} to {high}, not {show(value)}")
    return value


def check_port_range(value: object, *, low: int = 1024, high: int = 65535) -> tuple[int, int]:
    """Two port numbers [first, last], first < last, both within low..high.

    The default low leaves the privileged ports (below 1024) to root's own services.
    """
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(port, int) and not isinstance(port, bool) for port in value)
    ):
        raise InvalidOption(f"expected [low, high], two port numbers, not {show(value)}")
    first, last = value
    if not low <= first < last <= high:
        raise InvalidOption(
            f"invalid port range [{first}, {last}]: need {low} <= low < high <= {high}"
        )
    return first, last


def check_log_level(value: object) -> LogLevel:
    """One of LOG_LEVELS, as Python's logging names them but in lower case."""
    if value not in LOG_LEVELS:
        raise InvalidOption(f"expected one of {', '.join(LOG_LEVELS)}, not {show(value)}")
    return cast(LogLevel, value)
