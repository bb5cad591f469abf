"""Absolute paths, and the templates admins write them with (pure layer; no I/O).

Templates use systemdspawner's placeholders, ``{USERNAME}`` and ``{USERID}``, with
``str.format`` brace syntax (``{{`` is a literal brace) but none of its power: no attribute
access, indexing, conversions or format specs, which would let a template read Python objects.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from hostd.units._text import has_unsafe_char, show
from hostd.units.errors import InvalidInput, InvalidOption, InvalidPath
from hostd.units.names import validate_username

__all__ = [
    "NAME_MAX",
    "PATH_MAX",
    "expand_template",
    "substitute_placeholders",
    "user_placeholders",
    "validate_path",
]

# linux/limits.h: PATH_MAX counts the terminating NUL; NAME_MAX is per component. Both bytes.
PATH_MAX = 4096
NAME_MAX = 255


def validate_path(path: object) -> str:
    """Return path if it is absolute, normalised and printable, else raise InvalidPath.

    Normalised means no empty, "." or ".." component: no "//", no trailing "/" (but "/"
    itself). systemd's "-" (ignore if missing) and "+" (relative to the root directory)
    prefixes are refused: admins state paths plainly and hostd decides such flags.
    """
    if not isinstance(path, str):
        raise InvalidPath(f"a path must be a string, not {show(path)}")
    if not path.startswith("/"):
        prefixed = path[:2] in {"-/", "+/"}
        hint = " (systemd's '-' and '+' prefixes are not accepted)" if prefixed else ""
        raise InvalidPath(f"invalid path {show(path)}: must be absolute{hint}")
    if has_unsafe_char(path):
        raise InvalidPath(f"invalid path {show(path)}: holds a control or invisible character")
    if len(path.encode("utf-8")) >= PATH_MAX:
        raise InvalidPath(f"invalid path {show(path)}: longer than {PATH_MAX - 1} bytes")
    if path == "/":
        return path
    for part in path[1:].split("/"):
        if part in {"", ".", ".."}:
            raise InvalidPath(
                f"invalid path {show(path)}: not normalised (no '//', '.', '..' or trailing '/')"
            )
        if not part.strip():
            raise InvalidPath(f"invalid path {show(path)}: a component is only whitespace")
        if len(part.encode("utf-8")) > NAME_MAX:
            raise InvalidPath(f"invalid path {show(path)}: a component is over {NAME_MAX} bytes")
    return path


def substitute_placeholders(
    template: object,
    values: Mapping[str, str],
    *,
    error: type[InvalidInput] = InvalidOption,
    what: str = "template",
) -> str:
    """template with each ``{NAME}`` replaced by values[NAME]; anything else raises error."""
    if not isinstance(template, str):
        raise error(f"a {what} must be a string, not {show(template)}")
    allowed = ", ".join(f"{{{name}}}" for name in values)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:  # unbalanced braces
        raise error(f"invalid {what} {show(template)}: {exc}") from exc
    pieces: list[str] = []
    for literal, field, format_spec, conversion in parsed:
        pieces.append(literal)
        if field is None:
            continue
        if field not in values or format_spec or conversion:
            raise error(
                f"invalid {what} {show(template)}: the placeholders are {allowed} "
                "(write {{ and }} for literal braces)"
            )
        pieces.append(values[field])
    return "".join(pieces)


def user_placeholders(*, username: str, uid: int) -> dict[str, str]:
    """The values of {USERNAME} and {USERID}, checked so a substitution cannot inject."""
    if isinstance(uid, bool) or not isinstance(uid, int) or uid < 0:
        raise InvalidOption(f"invalid uid {show(uid)}: must be a non-negative integer")
    return {"USERNAME": validate_username(username), "USERID": str(uid)}


def expand_template(template: str, *, username: str, uid: int) -> str:
    """A path template with {USERNAME} and {USERID} expanded (systemdspawner's placeholders).

    The result is not checked as a path: pass it to validate_path.
    """
    values = user_placeholders(username=username, uid=uid)
    return substitute_placeholders(template, values, error=InvalidPath, what="path template")
