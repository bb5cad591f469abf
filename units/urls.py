"""URL paths a session is told about: its base URL and its default URL (pure; no I/O)."""

from __future__ import annotations

import re

from hostd.units._text import show
from hostd.units.errors import InvalidOption

__all__ = ["URL_MAX", "validate_base_url", "validate_default_url"]

URL_MAX = 2048

# RFC 3986 path characters (pchar) without "$", which systemd would expand in ExecStart=.
_PCHAR = r"A-Za-z0-9._~%!&'()*+,;=:@\-"
_BASE_URL = re.compile(rf"/(?:[{_PCHAR}]+/)*")
# A leading "//" (or "/\", which browsers read alike) would make the URL protocol-relative:
# a redirect to another host.
_DEFAULT_URL = re.compile(rf"/(?![/\\])[{_PCHAR}/?#]*")


def _checked(url: object, pattern: re.Pattern[str], what: str, example: str) -> str:
    if isinstance(url, str) and len(url) <= URL_MAX and pattern.fullmatch(url):
        # Dot segments count in the path only: after "?" or "#" they are data.
        path = re.split(r"[?#]", url, maxsplit=1)[0]
        if not {".", ".."} & set(path.split("/")):
            return url
    raise InvalidOption(f"invalid {what} {show(url)}: expected a path like {example!r}")


def validate_base_url(url: object) -> str:
    """A server's base URL as JupyterHub gives it: "/user/alice/" (starts and ends with "/")."""
    return _checked(url, _BASE_URL, "base URL", "/user/alice/")


def validate_default_url(url: object) -> str:
    """The URL path a session opens on ("/lab", "/tree?x=1"): local to the server."""
    return _checked(url, _DEFAULT_URL, "default URL", "/lab")
