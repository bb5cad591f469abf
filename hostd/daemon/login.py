"""Password checks for the hub, done by the root daemon (host layer).

The hub runs unprivileged and never reads /etc/shadow: it sends a user name and password over
the daemon's socket (POST /v1/auth) and gets the account's name and whether it is an admin, or
LoginFailed, or LockedOut. In order, ``Authenticator.authenticate``:

1. refuses a user name that is locked out (LockedOut; no password is checked meanwhile);
2. applies the account policy, hostd.daemon.users.lookup_user: root, system accounts (below min_uid
   or above UID_MAX) and users outside [daemon] allowed_groups never reach PAM, so PAM is
   never an oracle for root's password;
3. runs PAM (pam_authenticate, then pam_acct_mgmt: locked, expired and refused accounts)
   under [auth] pam_service, in a short-lived helper process (hostd.pamhelper.check) with a
   minimal environment, killed after PAM_TIMEOUT_S;
4. tells admins ([auth] admin_users, admin_groups) from the rest.

``Authenticator.account`` answers the same question without a password, for a start and for the
hub's re-check of its cookies and tokens: the account policy, then PAM's account management
alone (pam_acct_mgmt: an expired account) and a locked password (``usermod -L``, which
pam_acct_mgmt lets through: see hostd.pamhelper.check), in the same helper process. Its
refusals are AccountDisabled, with no deadline: only the hub and root may ask about others,
and the account policy's own refusals (UnknownUser, UserRefused) say as much already.

Every refusal is the same LoginFailed, answered at a whole multiple of FAILURE_FLOOR_S after the
request came (the first one is above pam_unix's longest delay), so neither the message nor the
time tells an unknown name from a wrong password. The journal gets the real reason with
HOSTD_USER; never the password.

The lockout (``Lockout``) lives in this process's memory only: a restart of the daemon forgets
it, as it forgets nothing else that matters (pam_faillock is there for a lockout on disk).
What it remembers is bounded by MAX_TRACKED_NAMES.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import sys
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from hostd.config.auth import AuthConfig
from hostd.config.daemon import DaemonConfig
from hostd.daemon.users import lookup_session_user, user_in_group
from hostd.units.errors import (
    AccountDisabled,
    AccountUnchecked,
    InvalidName,
    LockedOut,
    LoginFailed,
    UnknownUser,
    UserRefused,
)
from hostd.units.values import AccountView, AuthResult, Credentials

__all__ = [
    "FAILURE_FLOOR_S",
    "LOGIN_FAILED_MESSAGE",
    "MAX_TRACKED_NAMES",
    "PAM_TIMEOUT_S",
    "AccountPamCheck",
    "Authenticator",
    "Lockout",
    "PamVerdict",
    "run_account_check",
    "run_pam_check",
]

log = logging.getLogger(__name__)

LOGIN_FAILED_MESSAGE: Final = "login failed: wrong user name or password"
# pam_unix asks libpam for a 2 s delay after a failure, which libpam randomises by up to 25 %
# (so up to 2.5 s), and the helper process takes its own time: an unknown name, refused before
# PAM, was answered in 2.00 s and a real account's wrong password in 2.0-2.5 s (median 2.23 s),
# which told them apart. Every refusal is now answered on the same deadline after the request:
# 4 s, since a 3 s one was missed by PAM now and then on a loaded 2-core machine (a cold helper
# process); on a machine so slow that PAM takes longer, the next multiple of 4 s.
FAILURE_FLOOR_S: Final = 4.0
PAM_TIMEOUT_S: Final = 10.0
MAX_CONCURRENT_CHECKS: Final = 8  # PAM helper processes at once; more logins wait their turn
MAX_TRACKED_NAMES: Final = 10_000  # user names the lockout remembers failures of
HELPER_ARGV: Final = (sys.executable, "-I", "-m", "hostd.pamhelper.check")
# An account check (no password; python-pam not needed: ctypes alone) runs the same file by its
# path without site-packages (-S): a start waits for it, and site with an editable install's
# finder cost it 15 ms.
ACCOUNT_HELPER_ARGV: Final = (
    sys.executable,
    "-I",
    "-S",
    str(Path(__file__).resolve().parents[1] / "pamhelper" / "check.py"),
)
# The helper runs as root: nothing of the daemon's environment goes with it.
HELPER_ENV: Final = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
_STDERR_SHOWN = 300


# -- the lockout (pure) --------------------------------------------------------------------


@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)  # times, within the window
    locked_until: float | None = None


class Lockout:
    """Failed logins per user name: ``failures`` within ``window_s`` lock the name out for
    ``duration_s``. A success forgets the name's failures; the end of a lockout starts it
    afresh. Names are compared case-folded ("Alice" is "alice"), and unknown names count
    like known ones, or a lockout would tell which names exist.

    In memory, for at most ``max_tracked`` names: past that, names whose failures are all
    out of the window go first, then the oldest that are not locked out.
    """

    def __init__(
        self,
        *,
        failures: int,
        window_s: float,
        duration_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = MAX_TRACKED_NAMES,
    ) -> None:
        self.failures = failures
        self.window_s = window_s
        self.duration_s = duration_s
        self.max_tracked = max_tracked
        self._clock = clock
        self._records: dict[str, _Record] = {}  # in order of the last failure, oldest first

    def __len__(self) -> int:
        return len(self._records)

    @staticmethod
    def _key(name: str) -> str:
        return name.casefold()

    def retry_after(self, name: str) -> float | None:
        """Seconds until the name may try again, or None if it is not locked out."""
        key = self._key(name)
        record = self._records.get(key)
        if record is None or record.locked_until is None:
            return None
        left = record.locked_until - self._clock()
        if left > 0:
            return left
        del self._records[key]  # served its time: a clean slate
        return None

    def failed(self, name: str) -> bool:
        """Count one failure of the name; True if it locked the name out just now."""
        now, key = self._clock(), self._key(name)
        record = self._records.pop(key, None) or _Record()
        if record.locked_until is not None and record.locked_until <= now:
            record = _Record()
        while record.failures and record.failures[0] <= now - self.window_s:
            record.failures.popleft()
        record.failures.append(now)
        locked = record.locked_until is None and len(record.failures) >= self.failures
        if locked:
            record.locked_until = now + self.duration_s
            record.failures.clear()
        self._records[key] = record
        self._bound(now)
        return locked

    def succeeded(self, name: str) -> None:
        """Forget the name's failures (a lockout is checked before, never lifted by this)."""
        record = self._records.get(self._key(name))
        if record is not None and record.locked_until is None:
            del self._records[self._key(name)]

    def _bound(self, now: float) -> None:
        if len(self._records) <= self.max_tracked:
            return

        def stale(record: _Record) -> bool:
            if record.locked_until is not None:
                return record.locked_until <= now
            return not record.failures or record.failures[-1] <= now - self.window_s

        for key in [key for key, record in self._records.items() if stale(record)]:
            del self._records[key]
        for locked_too in (False, True):
            for key in list(self._records):
                if len(self._records) <= self.max_tracked:
                    return
                if locked_too or self._records[key].locked_until is None:
                    del self._records[key]


# -- PAM, in a helper process ---------------------------------------------------------------


@dataclass(frozen=True)
class PamVerdict:
    """What the PAM helper said. ``reason`` is for the journal; ``counts`` is False when the
    helper itself failed (timeout, crash): not a guess of the user's, and no answer to one."""

    ok: bool
    reason: str
    counts: bool = True


def _helper_failed(returncode: int | None, out: bytes, err: bytes) -> PamVerdict:
    status = f"killed by signal {-returncode}" if returncode and returncode < 0 else returncode
    tail = err.decode("utf-8", errors="replace").strip()[-_STDERR_SHOWN:]
    return PamVerdict(
        ok=False,
        reason=f"the PAM helper failed (exit status {status}, {len(out)} bytes out): {tail!r}",
        counts=False,
    )


def _verdict(returncode: int | None, out: bytes, err: bytes) -> PamVerdict:
    try:
        reply = json.loads(out)
    except ValueError:
        return _helper_failed(returncode, out, err)
    if returncode != 0 or not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        return _helper_failed(returncode, out, err)
    if reply["ok"]:
        return PamVerdict(ok=True, reason="PAM accepted the account")
    if "error" in reply:
        return PamVerdict(ok=False, reason=f"PAM helper: {reply['error']}", counts=False)
    return PamVerdict(ok=False, reason=f"PAM: {reply.get('reason')} (code {reply.get('code')})")


async def run_pam_check(
    service: str,
    username: str,
    password: str,
    *,
    timeout_s: float = PAM_TIMEOUT_S,
    argv: tuple[str, ...] = HELPER_ARGV,
) -> PamVerdict:
    """PAM's answer for one login, from a helper process (hostd.pamhelper.check) that gets the
    request on stdin and is killed if it has not answered within ``timeout_s``."""
    request = {"service": service, "username": username, "password": password}
    return await _run_helper(request, timeout_s=timeout_s, argv=argv)


async def run_account_check(
    service: str,
    username: str,
    *,
    timeout_s: float = PAM_TIMEOUT_S,
    argv: tuple[str, ...] = ACCOUNT_HELPER_ARGV,
) -> PamVerdict:
    """PAM's answer for an account alone (no password: pam_acct_mgmt and the password's lock),
    from the login's helper file, run without site-packages (ACCOUNT_HELPER_ARGV)."""
    request = {"service": service, "username": username, "check": "account"}
    return await _run_helper(request, timeout_s=timeout_s, argv=argv)


async def _run_helper(
    request: dict[str, str], *, timeout_s: float, argv: tuple[str, ...]
) -> PamVerdict:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=HELPER_ENV,
        cwd="/",
        start_new_session=True,  # a signal to the daemon's process group is not its business
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(json.dumps(request).encode()), timeout_s)
    except TimeoutError:
        return PamVerdict(
            ok=False, reason=f"PAM did not answer within {timeout_s:g} s", counts=False
        )
    finally:
        if proc.returncode is None:  # timed out, or the request was cancelled
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    return _verdict(proc.returncode, out, err)


# -- the whole check -------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, reason: str, *, counts: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.counts = counts


PamCheck = Callable[[str, str, str], Awaitable[PamVerdict]]
# (service, username) -> the verdict of PAM's account management and the password's lock
AccountPamCheck = Callable[[str, str], Awaitable[PamVerdict]]


class Authenticator:
    """Checks logins for the hub: the lockout, the account policy, PAM, admins.

    ``pam_check`` (run_pam_check), ``account_check`` (run_account_check), ``clock`` (the
    lockout's) and ``failure_floor_s`` are parameters so that the policy and the lockout can
    be tested without PAM and without waiting; the systemd tier runs the real ones.
    """

    def __init__(
        self,
        auth: AuthConfig,
        daemon: DaemonConfig,
        *,
        pam_check: PamCheck | None = None,
        account_check: AccountPamCheck | None = None,
        clock: Callable[[], float] = time.monotonic,
        failure_floor_s: float = FAILURE_FLOOR_S,
    ) -> None:
        self.auth = auth
        self.daemon = daemon
        self.lockout = Lockout(
            failures=auth.lockout_failures,
            window_s=auth.lockout_window_s,
            duration_s=auth.lockout_duration_s,
            clock=clock,
        )
        self._pam_check: PamCheck = pam_check or run_pam_check
        self._account_check: AccountPamCheck = account_check or run_account_check
        self._failure_floor_s = failure_floor_s
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_CHECKS)
        # One check at a time per name: parallel guesses cannot outrun the lockout.
        self._turns: dict[str, asyncio.Lock] = {}
        self._waiting: Counter[str] = Counter()

    @contextlib.asynccontextmanager
    async def _turn(self, name: str) -> AsyncIterator[None]:
        key = name.casefold()
        lock = self._turns.setdefault(key, asyncio.Lock())
        self._waiting[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key], self._turns[key]

    async def authenticate(self, credentials: Credentials) -> AuthResult:
        """The account's name and admin flag; LoginFailed or LockedOut."""
        name = credentials.username
        async with self._turn(name):
            started = time.monotonic()  # for the floor: real time, whatever the lockout's clock
            wait = self.lockout.retry_after(name)
            if wait is not None:
                seconds = max(1, math.ceil(wait))
                log.warning(
                    "login of %s refused: locked out for %d s more",
                    name,
                    seconds,
                    extra={"HOSTD_USER": name},
                )
                raise LockedOut(
                    f"too many failed logins: try again in {seconds} s", retry_after_s=seconds
                )
            try:
                result = await self._check(credentials)
            except _Refused as refused:
                await self._refuse(name, refused, started)
                raise LoginFailed(LOGIN_FAILED_MESSAGE) from None
            self.lockout.succeeded(name)
        log.info(
            "login of %s%s",
            result.user,
            " (admin)" if result.admin else "",
            extra={"HOSTD_USER": result.user},
        )
        return result

    async def _refuse(self, name: str, refused: _Refused, started: float) -> None:
        log.warning("login of %s failed: %s", name, refused.reason, extra={"HOSTD_USER": name})
        if refused.counts and self.lockout.failed(name):
            log.warning(
                "%s is locked out for %g s after %d failed logins within %g s",
                name,
                self.auth.lockout_duration_s,
                self.auth.lockout_failures,
                self.auth.lockout_window_s,
                extra={"HOSTD_USER": name},
            )
        floor = self._failure_floor_s
        if floor > 0:
            elapsed = time.monotonic() - started
            await asyncio.sleep(floor * max(1, math.ceil(elapsed / floor)) - elapsed)

    async def _check(self, credentials: Credentials) -> AuthResult:
        daemon = self.daemon
        try:
            info = await lookup_session_user(credentials.username, daemon)
        except (UnknownUser, UserRefused, InvalidName) as exc:
            # InvalidName: the database spells the name in a way hostd does not take.
            raise _Refused(exc.message) from None
        async with self._slots:
            # The database's spelling: the name the hub gets back is the one PAM checked.
            verdict = await self._pam_check(self.auth.pam_service, info.name, credentials.password)
        if not verdict.ok:
            raise _Refused(verdict.reason, counts=verdict.counts)
        admin = await asyncio.to_thread(self._is_admin, info.name)
        return AuthResult(user=info.name, admin=admin, uid=info.uid)

    async def account(self, user: str) -> AccountView:
        """The account, if it may have a session now: UnknownUser, UserRefused or InvalidName
        from the account policy, AccountDisabled when PAM refuses it (locked, expired),
        AccountUnchecked when PAM did not answer."""
        daemon = self.daemon
        info = await lookup_session_user(user, daemon)
        await self.check_account(info.name)
        admin = await asyncio.to_thread(self._is_admin, info.name)
        return AccountView(user=info.name, uid=info.uid, admin=admin)

    async def check_account(self, name: str) -> None:
        """PAM's account management (and the password's lock) for ``name``, an account the
        policy accepted: AccountDisabled or AccountUnchecked when it does not say yes."""
        async with self._slots:
            verdict = await self._account_check(self.auth.pam_service, name)
        if verdict.ok:
            return
        log.warning("account of %s refused: %s", name, verdict.reason, extra={"HOSTD_USER": name})
        if not verdict.counts:
            raise AccountUnchecked(
                f"the account {name} could not be checked (PAM did not answer); "
                "see the daemon's journal"
            )
        raise AccountDisabled(
            f"the account {name} is locked, expired or refused by PAM's account management "
            f"(service {self.auth.pam_service!r})"
        )

    def _is_admin(self, user: str) -> bool:
        return user in self.auth.admin_users or any(
            user_in_group(user, group) for group in self.auth.admin_groups
        )
