"""One PAM check, in a short-lived process of its own: ``python -I -m hostd.pamhelper.check``
for a login (python-pam), ``python -I -S <this file>`` for an account check (ctypes alone: a
start waits for it, and site with an editable install's finder cost it 15 ms).

Host layer, and the only module that loads libpam. hostd.daemon.login starts it as root for
one login, and it is gone after that one answer, so a crash, a hang or a leak in libpam or in
one of the modules /etc/pam.d/<service> stacks cannot take the daemon down (Cockpit's
cockpit-session does the same). It checks nothing but PAM: the account policy and the lockout are
hostd.daemon.login's.

Protocol. stdin: one JSON object of at most REQUEST_MAX bytes,
``{"service": "hostd", "username": "alice", "password": "..."}`` for a login, or
``{"service": "hostd", "username": "alice", "check": "account"}`` for the account alone (a
start, the hub's re-check: no password); the password is never in argv or the environment (any
local user can read /proc/PID/cmdline). stdout: one JSON object,

    {"ok": true}                                          PAM said yes
    {"ok": false, "code": 7, "reason": "..."}             PAM said no (pam(3) return code)
    {"ok": false, "code": null, "reason": "..."}          the password is locked (account check)
    {"ok": false, "error": "..."}                         the request was unusable

and exit status 0 whenever an answer was written. No answer says what the password was.

The account check is pam_acct_mgmt alone, and then the shadow entry's password field:
pam_unix's account module refuses an expired account (``usermod -e 1``) but not a locked
password (``usermod -L`` puts a "!" before the hash; measured in the testbed: PAM_SUCCESS),
because a login with a locked password fails in pam_authenticate anyway. A start or a hub
cookie asks no password, so the lock is read here, as ``passwd -S`` reads it ("L"): a "!" or
"*" before a password hash. A field that is only "!" or "*" (``useradd`` without a password,
as JupyterHub setups with OAuth make accounts) is an account that never had a password, not
a locked one: it is left to PAM (expire it with ``usermod -e 1`` to refuse it).
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
    "AccountCheck",
    "PamCheck",
    "answer",
    "check_account_with_pam",
    "check_with_pam",
    "locked_password",
    "main",
]

# The password (at most hostd.units.values.PASSWORD_MAX characters, 4 bytes each in UTF-8, escaped
# by JSON as up to 12) and a name fit well within this.
REQUEST_MAX: Final = 64 * 1024
_PR_SET_DUMPABLE: Final = 4  # prctl(2)

_PAM_SUCCESS: Final = 0
_PAM_CONV_ERR: Final = 19  # _pam_types.h: the account check has nobody to ask anything
# The account is good and only its password must change (chage -d 0, an aged password): a
# password login is refused for it (the hub changes no password), but a start or a cookie,
# which use no password, are the account's, as sshd lets a key in and asks for the change.
_PAM_NEW_AUTHTOK_REQD: Final = 12

# (service, username, password) -> (ok, PAM return code, PAM's reason)
PamCheck = Callable[[str, str, str], tuple[bool, int, str]]
# (service, username) -> (ok, PAM return code or None for a locked password, the reason)
AccountCheck = Callable[[str, str], tuple[bool, int | None, str]]


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


class _PamHandle(ctypes.Structure):
    _fields_ = [("handle", ctypes.c_void_p)]


class _PamConv(ctypes.Structure):
    _fields_ = [("conv", ctypes.c_void_p), ("appdata_ptr", ctypes.c_void_p)]


_CONV_FUNC = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p
)


def _no_conversation(_n: int, _messages: object, _responses: object, _data: object) -> int:
    # Account management asks nothing of a person; a module that does gets no answer.
    return _PAM_CONV_ERR


_NO_CONVERSATION: Final = _CONV_FUNC(_no_conversation)  # kept: libpam holds the pointer


class _Spwd(ctypes.Structure):
    # struct spwd, shadow.h (glibc)
    _fields_ = [
        ("sp_namp", ctypes.c_char_p),
        ("sp_pwdp", ctypes.c_char_p),
        ("sp_lstchg", ctypes.c_long),
        ("sp_min", ctypes.c_long),
        ("sp_max", ctypes.c_long),
        ("sp_warn", ctypes.c_long),
        ("sp_inact", ctypes.c_long),
        ("sp_expire", ctypes.c_long),
        ("sp_flag", ctypes.c_ulong),
    ]


def locked_password(field: str | None) -> bool:
    """Whether a shadow password field is a locked password, as ``passwd -S`` says "L" for
    it: a "!" or "*" before a hash. None (no shadow entry), "" and a bare "!"/"*"/"!!"/"!*"
    (no password was ever set) are not locked passwords."""
    if not field or field[0] not in "!*":
        return False
    return field.lstrip("!*") != ""


def _shadow_password(username: str) -> str | None:
    # getspnam(3) through NSS, as pam_unix reads it (files, or whatever nsswitch.conf says).
    libc = ctypes.CDLL(None, use_errno=True)  # the interpreter's own libc
    getspnam = libc.getspnam
    getspnam.restype = ctypes.POINTER(_Spwd)
    getspnam.argtypes = [ctypes.c_char_p]
    entry = getspnam(username.encode())
    if not entry or entry.contents.sp_pwdp is None:
        return None
    value: bytes = entry.contents.sp_pwdp
    return value.decode("utf-8", errors="replace")


def _libpam() -> ctypes.CDLL:
    # By its soname first: ctypes.util.find_library imports shutil, subprocess and tempfile and
    # runs ldconfig, which a start waits for (hostd.daemon.starter awaits this check).
    try:
        return ctypes.CDLL("libpam.so.0")
    except OSError:
        from ctypes.util import find_library  # shutil, subprocess, tempfile: 14 ms

        return ctypes.CDLL(find_library("pam"))


def check_account_with_pam(service: str, username: str) -> tuple[bool, int | None, str]:
    """pam_acct_mgmt alone (no password: expired or refused accounts), then the shadow entry's
    lock (see the module's docstring)."""
    libpam = _libpam()
    libpam.pam_start.restype = ctypes.c_int
    libpam.pam_start.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.POINTER(_PamConv),
        ctypes.POINTER(_PamHandle),
    ]
    libpam.pam_acct_mgmt.restype = ctypes.c_int
    libpam.pam_acct_mgmt.argtypes = [_PamHandle, ctypes.c_int]
    libpam.pam_strerror.restype = ctypes.c_char_p
    libpam.pam_strerror.argtypes = [_PamHandle, ctypes.c_int]
    libpam.pam_end.restype = ctypes.c_int
    libpam.pam_end.argtypes = [_PamHandle, ctypes.c_int]
    conv = _PamConv(ctypes.cast(_NO_CONVERSATION, ctypes.c_void_p), None)
    handle = _PamHandle()
    code = libpam.pam_start(service.encode(), username.encode(), ctypes.byref(conv), handle)
    if code != _PAM_SUCCESS:
        return False, code, f"pam_start failed (code {code})"
    try:
        code = libpam.pam_acct_mgmt(handle, 0)
        reason = (libpam.pam_strerror(handle, code) or b"").decode("utf-8", errors="replace")
    finally:
        libpam.pam_end(handle, code)
    if code not in (_PAM_SUCCESS, _PAM_NEW_AUTHTOK_REQD):
        return False, code, reason
    if locked_password(_shadow_password(username)):
        return False, None, "the password is locked (usermod -L, passwd -l)"
    return True, code, reason


def _no_core_dumps() -> None:
    # A crash of a PAM module must not write this process's memory, the password with it, to
    # a core file. Not dumpable also keeps non-root users from ptrace(2)-ing it.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def _request(raw: bytes) -> tuple[str, str, str | None]:
    """(service, username, password) from the request, password None for an account check;
    ValueError saying what is wrong (and never what the password is)."""
    if len(raw) > REQUEST_MAX:
        raise ValueError(f"request over {REQUEST_MAX} bytes")
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("request is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("request is not a JSON object")
    account_only = "check" in data
    if account_only and data["check"] != "account":
        raise ValueError('check: expected "account"')
    if account_only and "password" in data:
        raise ValueError("an account check takes no password")
    fields = []
    for key in ("service", "username") if account_only else ("service", "username", "password"):
        value = data.get(key)
        if not isinstance(value, str) or not value or "\0" in value:
            raise ValueError(f"{key}: expected a non-empty string without NUL")
        fields.append(value)
    return fields[0], fields[1], None if account_only else fields[2]


def answer(
    raw: bytes,
    check: PamCheck = check_with_pam,
    check_account: AccountCheck = check_account_with_pam,
) -> dict[str, Any]:
    """The answer to one request (the pure half of main)."""
    try:
        service, username, password = _request(raw)
    except ValueError as exc:
        return {"ok": False, "error": str(exc)}
    code: int | None
    try:
        if password is None:
            ok, code, reason = check_account(service, username)
        else:
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
