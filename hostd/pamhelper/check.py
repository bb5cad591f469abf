"""One PAM check, in a short-lived process of its own: ``python -I -m hostd.pamhelper.check``.

Host layer, and the only module that loads libpam. hostd.daemon.login starts it as root for
one login, and it is gone after that one answer, so a crash, a hang or a leak in libpam or in
one of the modules /etc/pam.d/<service> stacks cannot take the daemon down (Cockpit's
cockpit-session does the same). It checks nothing but PAM: the account policy and the lockout are
hostd.daemon.login's.

Protocol. stdin: one JSON object of at most REQUEST_MAX bytes,
``{"service": "hostd", "username": "alice", "password": "..."}``; the password is never in argv
or the environment (any local user can read /proc/PID/cmdline). stdout: one JSON object,

    {"ok": true}                                          pam_authenticate and pam_acct_mgmt
    {"ok": false, "code": 7, "reason": "..."}             PAM said no (pam(3) return code)
    {"ok": false, "error": "..."}                         the request was unusable

and exit status 0 whenever an answer was written. No answer says what the password was.
"""

from __future__ import annotations

import ctypes
import json
import resource
import sys
from collections.abc import Callable
from typing import IO, Any, Final

__all__ = [
    "REQUEST_MAX",
    "PamCheck",
    "answer",
    "check_with_pam",
    "main",
]

# The password (at most hostd.units.values.PASSWORD_MAX characters, 4 bytes each in UTF-8, escaped
# by JSON as up to 12) and a name fit well within this.
REQUEST_MAX: Final = 64 * 1024
_PR_SET_DUMPABLE: Final = 4  # prctl(2)

# (service, username, password) -> (ok, PAM return code, PAM's reason)
PamCheck = Callable[[str, str, str], tuple[bool, int, str]]


def check_with_pam(service: str, username: str, password: str) -> tuple[bool, int, str]:
    """pam_authenticate, then pam_acct_mgmt (expired, locked or refused accounts), as python-pam
    does them; no pam_setcred and no session: this only answers whether the login is good."""
    import pam  # here, not at the top: only this process may load libpam

    authenticator = pam.PamAuthenticator()
    ok = authenticator.authenticate(username, password, service=service, resetcreds=False)
    reason = authenticator.reason
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", errors="replace")
    return bool(ok), int(authenticator.code), str(reason or "")


def _no_core_dumps() -> None:
    # A crash of a PAM module must not write this process's memory, the password with it, to
    # a core file. Not dumpable also keeps non-root users from ptrace(2)-ing it.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def _request(raw: bytes) -> tuple[str, str, str]:
    """(service, username, password) from the request; ValueError saying what is wrong (and
    never what the password is)."""
    if len(raw) > REQUEST_MAX:
        raise ValueError(f"request over {REQUEST_MAX} bytes")
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("request is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("request is not a JSON object")
    fields = []
    for key in ("service", "username", "password"):
        value = data.get(key)
        if not isinstance(value, str) or not value or "\0" in value:
            raise ValueError(f"{key}: expected a non-empty string without NUL")
        fields.append(value)
    return fields[0], fields[1], fields[2]


def answer(raw: bytes, check: PamCheck = check_with_pam) -> dict[str, Any]:
    """The answer to one request (the pure half of main)."""
    try:
        service, username, password = _request(raw)
    except ValueError as exc:
        return {"ok": False, "error": str(exc)}
    try:
        ok, code, reason = check(service, username, password)
    except (UnicodeError, ValueError) as exc:
        # python-pam refuses what C strings cannot hold; say which kind, not the value.
        return {"ok": False, "error": f"PAM refused the request ({type(exc).__name__})"}
    if ok:
        return {"ok": True}
    return {"ok": False, "code": code, "reason": reason}


def main(stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> int:
    _no_core_dumps()
    source = stdin if stdin is not None else sys.stdin.buffer
    sink = stdout if stdout is not None else sys.stdout.buffer
    reply = answer(source.read(REQUEST_MAX + 1))
    sink.write(json.dumps(reply).encode() + b"\n")
    sink.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
