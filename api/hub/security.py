"""The hub's small security primitives: the cookie key, signatures, CSRF tokens, the post-login
``next`` and the same-origin check (api layer; pure but for load_or_create_secret).

What each defends against:

- the session cookie is ``<id>.<signature>``: a random id that also has to be in the
  database (logout deletes it there), signed with the key so that a guessed id never even
  reaches the database;
- a CSRF token is an HMAC of the session id (JupyterHub's names: form field ``_xsrf``,
  header ``X-XSRFToken``), so one session's token is worthless in another;
- ``safe_next`` sends a browser only to a path on this hub: never ``//host``, ``/\\host``,
  ``///host``, a URL with a scheme, or anything a browser would rewrite into one;
- ``cross_site`` refuses a state-changing request that a browser says came from another site
  (``Sec-Fetch-Site``, ``Origin``), on top of SameSite=Lax cookies and the CSRF token;
- ``from_user_page`` and ``scripted_load`` are a partial guard for the hub against the pages of
  users' servers, which share its origin (see their docstrings and SECURITY.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from starlette.datastructures import Headers

__all__ = [
    "DEFAULT_NEXT",
    "SECRET_BYTES",
    "Secret",
    "cross_site",
    "from_user_page",
    "hash_token",
    "load_or_create_secret",
    "new_token",
    "safe_next",
    "scripted_load",
]

SECRET_BYTES: Final = 32
DEFAULT_NEXT: Final = "/hub/home"
NEXT_MAX_CHARS: Final = 2048
# Where a login may lead: the hub's pages and the users' servers.
_NEXT_PREFIXES: Final = ("/hub/", "/user/")
_SAFE_FETCH_SITES: Final = frozenset({"same-origin", "none"})


class Secret:
    """The cookie key: bytes that no repr, str or log line shows (starlette's Secret, for
    bytes). ``sign``/``verify`` and ``token_for`` are the only uses of it."""

    def __init__(self, key: bytes) -> None:
        if len(key) < SECRET_BYTES:
            raise ValueError(f"a cookie key needs at least {SECRET_BYTES} bytes")
        self._key = key

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def _mac(self, purpose: str, value: str) -> str:
        digest = hmac.new(self._key, f"{purpose}\0{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, purpose: str, value: str) -> str:
        """``value.signature``; value must not hold a dot."""
        return f"{value}.{self._mac(purpose, value)}"

    def verify(self, purpose: str, signed: str | None) -> str | None:
        """The value of a signed string, or None when it was not signed by this key."""
        if not signed or signed.count(".") != 1:
            return None
        value, mac = signed.split(".")
        if not hmac.compare_digest(mac.encode(), self._mac(purpose, value).encode()):
            return None
        return value

    def token_for(self, purpose: str, value: str) -> str:
        """A token bound to value (a CSRF token for a session id, say)."""
        return self._mac(purpose, value)

    def check_token(self, purpose: str, value: str, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(token.encode(), self.token_for(purpose, value).encode())


def load_or_create_secret(path: Path) -> Secret:
    """The key in ``path``, made (0600, O_EXCL) at the first start; refused if others may
    read it. Its directory must exist (the hub's state_dir, made by the installer)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(SECRET_BYTES).hex().encode() + b"\n")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if mode & 0o077:
            raise PermissionError(
                f"{path} may be read by others (mode {mode & 0o777:o}); chmod 600 it"
            )
        text = handle.read().strip()
    try:
        key = bytes.fromhex(text.decode())
    except ValueError:
        key = text  # a key an admin wrote by hand: its bytes as they are
    return Secret(key)


def new_token() -> str:
    """A random token for a session id or an API token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_token(token: str) -> str:
    """What the database keeps of a token: its SHA-256 (tokens are random, no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a path on this hub under /hub/ or /user/, else None.

    Browsers treat "\\" as "/" and drop tabs and newlines before parsing, so "/\\host" and
    "/\\t/host" would leave the site: any backslash or control character refuses the value.
    """
    if not value or len(value) > NEXT_MAX_CHARS:
        return None
    if "\\" in value or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return None
    if not value.startswith("/") or value.startswith("//"):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    if not value.startswith(_NEXT_PREFIXES):
        return None
    return value


def cross_site(headers: Headers) -> bool:
    """True when the browser says the request came from another site (or origin).

    ``Sec-Fetch-Site`` (every current browser) is believed first; else an ``Origin`` whose
    host differs from ``Host``; a request with neither (a script, an old browser) is not
    called cross-site here: its CSRF token decides.
    """
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site not in _SAFE_FETCH_SITES
    origin = headers.get("origin")
    if origin is None:
        return False
    if origin == "null":
        return True
    host = headers.get("host", "")
    return urlsplit(origin).netloc.lower() != host.lower()


def from_user_page(headers: Headers) -> bool:
    """True when the browser says the request was made by a page of a user's server on this hub:
    a ``Referer`` of this host under /user/.

    Users' servers are served from the hub's own origin, so their pages' scripts run with the
    hub's cookie. This catches the plain case; a script that sends no Referer, or a forged one of
    this origin, is not caught: only a separate origin per user closes that (SECURITY.md).
    """
    referer = headers.get("referer")
    if referer is None:
        return False
    parts = urlsplit(referer)
    same_host = parts.netloc.lower() == headers.get("host", "").lower()
    return same_host and (parts.path == "/user" or parts.path.startswith("/user/"))


def scripted_load(headers: Headers) -> bool:
    """True when the browser says a script, not a navigation, is loading this: a hub page is only
    ever navigated to (``Sec-Fetch-Dest: document``), so a page a script could read (its CSRF
    token with it) is refused to ``fetch`` and to frames. Without the header (an old browser,
    curl) nothing is said."""
    dest = headers.get("sec-fetch-dest")
    return dest is not None and dest != "document"
