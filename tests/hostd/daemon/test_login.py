"""hostd.daemon.login without PAM: the lockout on a fake clock, the policy around PAM (a fake
check), the helper process's plumbing (stand-in helpers), and hostd.pamhelper's protocol; [auth]
itself is tests/hostd/config/test_auth.py.

Real PAM is proven in tests/hostd/daemon/systemd/test_auth.py, inside the testbed. The accounts here
are Debian's own: root (uid 0) and daemon (uid 1, group daemon), looked up, never changed;
with min_uid 1, daemon stands in for an ordinary user.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostd.config import AuthConfig, DaemonConfig
from hostd.daemon.login import (
    ACCOUNT_HELPER_ARGV,
    LOGIN_FAILED_MESSAGE,
    Authenticator,
    Lockout,
    PamVerdict,
    run_account_check,
    run_pam_check,
)
from hostd.pamhelper import check as pam_check
from hostd.units.errors import (
    AccountDisabled,
    AccountUnchecked,
    LockedOut,
    LoginFailed,
    UnknownUser,
    UserRefused,
)
from hostd.units.values import AccountView, AuthResult, Credentials

PASSWORD = "Correct-Horse-7"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- the lockout -------------------------------------------------------------------------------


def lockout(clock: Clock, **options: float) -> Lockout:
    settings = {"failures": 5, "window_s": 900.0, "duration_s": 900.0, **options}
    return Lockout(
        failures=int(settings["failures"]),
        window_s=settings["window_s"],
        duration_s=settings["duration_s"],
        clock=clock,
    )


def test_five_failures_lock_the_name_out_for_the_duration() -> None:
    clock = Clock()
    locks = lockout(clock)
    assert [locks.failed("alice") for _ in range(4)] == [False] * 4
    assert locks.retry_after("alice") is None
    assert locks.failed("alice") is True
    assert locks.retry_after("alice") == 900.0
    clock.advance(899.5)
    assert locks.retry_after("alice") == 0.5
    clock.advance(0.5)
    assert locks.retry_after("alice") is None
    assert len(locks) == 0  # served: a clean slate, four more failures are allowed
    assert [locks.failed("alice") for _ in range(4)] == [False] * 4


def test_failures_out_of_the_window_do_not_count() -> None:
    clock = Clock()
    locks = lockout(clock)
    for _ in range(4):
        locks.failed("alice")
        clock.advance(300)  # failures at 0, 300, 600, 900
    # At 1200 the one at 0 and the one at 300 (900 s old: out) are gone.
    assert locks.failed("alice") is False
    assert locks.failed("alice") is False
    assert locks.failed("alice") is True


def test_a_success_forgets_the_failures_but_not_a_lockout() -> None:
    clock = Clock()
    locks = lockout(clock)
    for _ in range(4):
        locks.failed("alice")
    locks.succeeded("alice")
    assert [locks.failed("alice") for _ in range(4)] == [False] * 4
    assert locks.failed("alice") is True
    locks.succeeded("alice")
    assert locks.retry_after("alice") == 900.0


def test_names_are_counted_apart_and_case_folded() -> None:
    locks = lockout(Clock(), failures=2)
    locks.failed("alice")
    locks.failed("bob")
    assert locks.failed("ALICE") is True
    assert locks.retry_after("alice") is not None
    assert locks.retry_after("Alice") is not None
    assert locks.retry_after("bob") is None


def test_a_failure_while_locked_out_does_not_extend_it() -> None:
    clock = Clock()
    locks = lockout(clock, failures=1, duration_s=60)
    assert locks.failed("alice") is True
    clock.advance(30)
    assert locks.failed("alice") is False
    assert locks.retry_after("alice") == 30


def test_a_failure_after_a_lockout_ended_starts_afresh() -> None:
    clock = Clock()
    locks = lockout(clock, failures=2, duration_s=60)
    locks.failed("alice")
    assert locks.failed("alice") is True
    clock.advance(61)
    assert locks.failed("alice") is False  # not retry_after first: failed() sees the end too
    assert locks.failed("alice") is True


def test_what_it_remembers_is_bounded_and_lockouts_go_last() -> None:
    clock = Clock()
    locks = Lockout(failures=2, window_s=100, duration_s=1000, clock=clock, max_tracked=3)
    locks.failed("old")
    clock.advance(200)  # "old" is out of the window: stale
    locks.failed("locked")
    locks.failed("locked")
    locks.failed("a")
    locks.failed("b")  # four names: the stale one goes
    assert locks.retry_after("locked") is not None
    locks.failed("c")  # then the oldest that is not locked out
    assert len(locks) == 3
    assert locks.retry_after("locked") is not None
    assert locks.failed("a") is False  # "a" was forgotten: this is its first failure again
    for name in ("x", "y", "z"):
        locks.failed(name)
        locks.failed(name)  # three lockouts, and room for three names
    assert len(locks) == 3


# -- the policy around PAM ------------------------------------------------------------------


class FakePam:
    """PAM as a dict of passwords; records every call, never runs libpam."""

    def __init__(self, passwords: dict[str, str] | None = None) -> None:
        self.passwords = passwords if passwords is not None else {"daemon": PASSWORD}
        self.calls: list[tuple[str, str]] = []
        self.verdict: PamVerdict | None = None  # forced, when set
        self.delay_s = 0.0

    async def __call__(self, service: str, username: str, password: str) -> PamVerdict:
        self.calls.append((service, username))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.verdict is not None:
            return self.verdict
        if self.passwords.get(username) == password:
            return PamVerdict(ok=True, reason="PAM accepted")
        return PamVerdict(ok=False, reason="PAM: Authentication failure (code 7)")


def authenticator(
    pam: FakePam,
    clock: Clock | None = None,
    *,
    auth: AuthConfig | None = None,
    daemon: DaemonConfig | None = None,
    floor_s: float = 0.0,
) -> Authenticator:
    return Authenticator(
        auth or AuthConfig(),
        daemon or DaemonConfig(min_uid=1),
        pam_check=pam,
        clock=clock or time.monotonic,
        failure_floor_s=floor_s,
    )


async def test_the_right_password_of_an_ordinary_account() -> None:
    pam = FakePam()
    result = await authenticator(pam).authenticate(Credentials("daemon", PASSWORD))
    assert result == AuthResult(user="daemon", admin=False, uid=1)
    assert pam.calls == [("hostd", "daemon")]


async def test_the_pam_service_is_the_configured_one() -> None:
    pam = FakePam()
    auth = AuthConfig(pam_service="hostd-hub")
    await authenticator(pam, auth=auth).authenticate(Credentials("daemon", PASSWORD))
    assert pam.calls == [("hostd-hub", "daemon")]


@pytest.mark.parametrize(
    "auth",
    [AuthConfig(admin_users=("daemon",)), AuthConfig(admin_groups=("nosuchgroup", "daemon"))],
    ids=["admin_users", "admin_groups"],
)
async def test_admins_come_from_admin_users_and_admin_groups(auth: AuthConfig) -> None:
    result = await authenticator(FakePam(), auth=auth).authenticate(Credentials("daemon", PASSWORD))
    assert result == AuthResult(user="daemon", admin=True, uid=1)


@pytest.mark.parametrize(
    ("name", "daemon", "reason"),
    [
        ("root", DaemonConfig(min_uid=1), "root may not have a session"),
        ("daemon", DaemonConfig(), "'daemon' is a system account (uid 1 is below min_uid 1000)"),
        ("nobody", DaemonConfig(min_uid=1), "above UID_MAX"),
        ("zz-no-such-user", DaemonConfig(min_uid=1), "no account named 'zz-no-such-user'"),
        (
            "daemon",
            DaemonConfig(min_uid=1, allowed_groups=("root",)),
            "is not allowed a session (allowed: group root)",
        ),
    ],
)
async def test_refused_accounts_never_reach_pam_and_fail_like_a_wrong_password(
    name: str, daemon: DaemonConfig, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    pam = FakePam({"root": PASSWORD, "daemon": PASSWORD, "nobody": PASSWORD})
    check = authenticator(pam, daemon=daemon)
    with (
        caplog.at_level(logging.INFO, logger="hostd.daemon.login"),
        pytest.raises(LoginFailed) as caught,
    ):
        await check.authenticate(Credentials(name, PASSWORD))
    assert caught.value.message == LOGIN_FAILED_MESSAGE
    assert pam.calls == []
    [record] = caplog.records
    assert reason in record.getMessage()
    assert record.__dict__["HOSTD_USER"] == name  # the journal field
    assert PASSWORD not in caplog.text


async def test_a_wrong_password_is_login_failed_and_logged_with_pams_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="hostd.daemon.login"),
        pytest.raises(LoginFailed) as caught,
    ):
        await authenticator(FakePam()).authenticate(Credentials("daemon", "wrong-" + PASSWORD))
    assert caught.value.message == LOGIN_FAILED_MESSAGE
    [record] = caplog.records
    assert record.getMessage() == "login of daemon failed: PAM: Authentication failure (code 7)"
    assert record.levelno == logging.WARNING
    assert PASSWORD not in caplog.text


async def test_a_success_is_logged_with_the_user(caplog: pytest.LogCaptureFixture) -> None:
    check = authenticator(FakePam(), auth=AuthConfig(admin_users=("daemon",)))
    with caplog.at_level(logging.INFO, logger="hostd.daemon.login"):
        await check.authenticate(Credentials("daemon", PASSWORD))
    assert [(r.getMessage(), r.__dict__["HOSTD_USER"]) for r in caplog.records] == [
        ("login of daemon (admin)", "daemon")
    ]


async def test_five_failures_lock_out_even_the_right_password_until_it_ends() -> None:
    clock, pam = Clock(), FakePam()
    check = authenticator(pam, clock, auth=AuthConfig(lockout_duration_s=60))
    for _ in range(5):
        with pytest.raises(LoginFailed):
            await check.authenticate(Credentials("daemon", "guess"))
    with pytest.raises(LockedOut) as caught:
        await check.authenticate(Credentials("daemon", PASSWORD))
    assert caught.value.retry_after_s == 60
    assert len(pam.calls) == 5  # no password is checked while locked out
    clock.advance(59.2)
    with pytest.raises(LockedOut) as caught:
        await check.authenticate(Credentials("daemon", PASSWORD))
    assert caught.value.retry_after_s == 1  # rounded up: never 0
    clock.advance(0.8)
    assert (await check.authenticate(Credentials("daemon", PASSWORD))).user == "daemon"


async def test_unknown_and_refused_names_are_locked_out_too() -> None:
    # Else a lockout would tell the names that exist from those that do not.
    check = authenticator(FakePam(), Clock(), auth=AuthConfig(lockout_failures=2))
    for name in ("zz-no-such-user", "root"):
        for _ in range(2):
            with pytest.raises(LoginFailed):
                await check.authenticate(Credentials(name, "guess"))
        with pytest.raises(LockedOut):
            await check.authenticate(Credentials(name, "guess"))


async def test_a_success_resets_the_count() -> None:
    check = authenticator(FakePam(), Clock(), auth=AuthConfig(lockout_failures=2))
    for _ in range(3):
        with pytest.raises(LoginFailed):
            await check.authenticate(Credentials("daemon", "guess"))
        await check.authenticate(Credentials("daemon", PASSWORD))


async def test_a_failing_helper_is_login_failed_but_not_counted() -> None:
    pam = FakePam()
    pam.verdict = PamVerdict(ok=False, reason="PAM did not answer within 10 s", counts=False)
    check = authenticator(pam, Clock(), auth=AuthConfig(lockout_failures=1))
    for _ in range(3):
        with pytest.raises(LoginFailed):
            await check.authenticate(Credentials("daemon", PASSWORD))
    assert check.lockout.retry_after("daemon") is None


async def test_parallel_guesses_cannot_outrun_the_lockout() -> None:
    pam = FakePam()
    pam.delay_s = 0.01
    check = authenticator(pam)

    async def attempt() -> str:
        try:
            await check.authenticate(Credentials("daemon", "guess"))
        except LoginFailed:
            return "failed"
        except LockedOut:
            return "locked"
        return "ok"

    outcomes = await asyncio.gather(*(attempt() for _ in range(20)))
    assert sorted(outcomes) == ["failed"] * 5 + ["locked"] * 15
    assert len(pam.calls) == 5
    assert check._turns == {}  # nothing left behind per name


async def test_a_refusal_takes_at_least_the_floor_and_a_success_does_not() -> None:
    check = authenticator(FakePam(), floor_s=0.3)
    started = time.monotonic()
    with pytest.raises(LoginFailed):
        await check.authenticate(Credentials("zz-no-such-user", PASSWORD))
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await check.authenticate(Credentials("daemon", PASSWORD))
    assert time.monotonic() - started < 0.3


async def test_every_refusal_is_answered_on_the_same_deadline_whatever_pam_took() -> None:
    # An unknown name is refused before PAM; a wrong password after PAM's own delay, which
    # varies (pam_unix: 2 s, randomised by libpam). Both answers come on the same deadline.
    floor = 0.4
    times: dict[str, list[float]] = {"unknown": [], "wrong": []}
    for pam_takes in (0.0, 0.15, 0.3):
        pam = FakePam()
        pam.delay_s = pam_takes
        check = authenticator(pam, floor_s=floor)
        for kind, name in (("unknown", "zz-no-such-user"), ("wrong", "daemon")):
            started = time.monotonic()
            with pytest.raises(LoginFailed):
                await check.authenticate(Credentials(name, "not the password"))
            times[kind].append(time.monotonic() - started)
    for taken in times["unknown"] + times["wrong"]:
        assert floor <= taken < floor + 0.08, times


async def test_a_pam_slower_than_the_deadline_is_answered_on_the_next_one() -> None:
    pam = FakePam()
    pam.delay_s = 0.25
    check = authenticator(pam, floor_s=0.2)
    started = time.monotonic()
    with pytest.raises(LoginFailed):
        await check.authenticate(Credentials("daemon", "not the password"))
    assert 0.4 <= time.monotonic() - started < 0.48


# -- the helper process's plumbing (stand-ins for hostd.pamhelper.check) -------------------


def helper(code: str) -> tuple[str, ...]:
    return (sys.executable, "-I", "-c", code)


ECHO_HELPER = helper(
    "import json, os, sys\n"
    "request = json.load(sys.stdin)\n"
    "ok = request['password'] == 'right' and request['service'] == 'hostd'\n"
    "print(json.dumps({'ok': ok, 'code': 7, 'reason': repr([sys.argv, sorted(os.environ)])}))\n"
)


async def test_the_request_goes_on_stdin_and_the_environment_is_minimal() -> None:
    assert (await run_pam_check("hostd", "alice", "right", argv=ECHO_HELPER)).ok
    verdict = await run_pam_check("hostd", "alice", "wrong", argv=ECHO_HELPER)
    assert not verdict.ok and verdict.counts
    # argv holds no password; the environment is PATH and LANG only.
    assert "wrong" not in verdict.reason
    assert "['-c'], ['LANG', 'PATH']" in verdict.reason


async def test_a_helper_that_does_not_answer_in_time_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    argv = helper(
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    started = time.monotonic()
    verdict = await run_pam_check("hostd", "alice", "pw", argv=argv, timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert verdict == PamVerdict(ok=False, reason="PAM did not answer within 0.5 s", counts=False)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        ("import sys; sys.stderr.write('libpam went wrong'); sys.exit(3)", "exit status 3"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "killed by signal 11"),
        ("print('not json')", "exit status 0"),
        ("print('[1, 2]')", "exit status 0"),
        ("print('{\"ok\": true}'); raise SystemExit(1)", "exit status 1"),
    ],
)
async def test_a_helper_that_fails_is_a_failure_that_does_not_count(code: str, shown: str) -> None:
    verdict = await run_pam_check("hostd", "alice", "pw", argv=helper(code))
    assert not verdict.ok and not verdict.counts
    assert shown in verdict.reason


async def test_a_helper_that_refuses_the_request_does_not_count() -> None:
    argv = helper('print(\'{"ok": false, "error": "request is not JSON"}\')')
    verdict = await run_pam_check("hostd", "alice", "pw", argv=argv)
    assert verdict == PamVerdict(ok=False, reason="PAM helper: request is not JSON", counts=False)


async def test_a_cancelled_check_kills_its_helper(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    argv = helper(
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    task = asyncio.create_task(run_pam_check("hostd", "alice", "pw", argv=argv))
    for _ in range(500):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


async def test_the_account_check_helper_runs_without_site_packages() -> None:
    # ACCOUNT_HELPER_ARGV runs check.py with -S: an import of anything outside the standard
    # library on the account path would fail every start as "could not be checked". Real PAM
    # answers here, for this process's own account (yes or no: an answer, not a helper error).
    assert "-S" in ACCOUNT_HELPER_ARGV
    import pwd

    me = pwd.getpwuid(os.getuid()).pw_name
    verdict = await run_account_check("login", me)
    assert verdict.counts, verdict.reason


# -- hostd.pamhelper.check's protocol -------------------------------------------------------


def request(**fields: object) -> bytes:
    return json.dumps(
        {"service": "hostd", "username": "alice", "password": "pw", **fields}
    ).encode()


def test_the_helper_answers_what_pam_says() -> None:
    def says_yes(service: str, username: str, password: str) -> tuple[bool, int, str]:
        assert (service, username, password) == ("hostd", "alice", "pw")
        return True, 0, "Success"

    def says_no(service: str, username: str, password: str) -> tuple[bool, int, str]:
        return False, 13, "User account has expired"

    assert pam_check.answer(request(), says_yes) == {"ok": True}
    assert pam_check.answer(request(), says_no) == {
        "ok": False,
        "code": 13,
        "reason": "User account has expired",
    }


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        request(password=""),
        request(password=5),
        request(username=None),
        request(service="hostd\u0000"),
        request(password="a\u0000b"),
        b" " * (pam_check.REQUEST_MAX + 1),
    ],
)
def test_the_helper_refuses_an_unusable_request_without_calling_pam(raw: bytes) -> None:
    def must_not_run(service: str, username: str, password: str) -> tuple[bool, int, str]:
        raise AssertionError("PAM was called")

    reply = pam_check.answer(raw, must_not_run)
    assert reply["ok"] is False and isinstance(reply["error"], str)


def test_what_pam_refuses_is_answered_without_the_value() -> None:
    def refuses(service: str, username: str, password: str) -> tuple[bool, int, str]:
        raise ValueError(f"cannot take {password}")

    reply = pam_check.answer(request(password="hunter2"), refuses)
    assert reply == {"ok": False, "error": "PAM refused the request (ValueError)"}


def test_the_helper_process_speaks_json_on_stdin_and_stdout() -> None:
    # An unusable request: answered before libpam is loaded, so no PAM runs on this machine.
    result = subprocess.run(
        [sys.executable, "-I", "-m", "hostd.pamhelper.check"],
        input=b"[]",
        capture_output=True,
        check=False,
        timeout=30,
        cwd="/",
    )
    assert (result.returncode, result.stderr) == (0, b"")
    assert json.loads(result.stdout) == {"ok": False, "error": "request is not a JSON object"}


# -- the account alone: starts and the hub's re-check (no password) ------------------------


def account_request(**fields: object) -> bytes:
    return json.dumps(
        {"service": "hostd", "username": "alice", "check": "account", **fields}
    ).encode()


def test_the_helper_checks_an_account_without_a_password() -> None:
    def no_login(service: str, username: str, password: str) -> tuple[bool, int, str]:
        raise AssertionError("an account check asked for a password check")

    def expired(service: str, username: str) -> tuple[bool, int | None, str]:
        assert (service, username) == ("hostd", "alice")
        return False, 7, "Authentication failure"

    def locked(service: str, username: str) -> tuple[bool, int | None, str]:
        return False, None, "the password is locked (usermod -L, passwd -l)"

    def usable(service: str, username: str) -> tuple[bool, int | None, str]:
        return True, 0, "Success"

    assert pam_check.answer(account_request(), no_login, usable) == {"ok": True}
    assert pam_check.answer(account_request(), no_login, expired) == {
        "ok": False,
        "code": 7,
        "reason": "Authentication failure",
    }
    assert pam_check.answer(account_request(), no_login, locked)["code"] is None


@pytest.mark.parametrize(
    "raw",
    [
        account_request(check="password"),
        account_request(password="pw"),  # an account check never carries one
        account_request(username=""),
        account_request(username="a\u0000b"),
    ],
)
def test_an_unusable_account_request_reaches_no_pam(raw: bytes) -> None:
    def must_not_run(*args: str) -> tuple[bool, int, str]:
        raise AssertionError("PAM was called")

    reply = pam_check.answer(raw, must_not_run, must_not_run)
    assert reply["ok"] is False and isinstance(reply["error"], str)


@pytest.mark.parametrize(
    ("field", "locked"),
    [
        ("!$y$j9T$salt$hash", True),  # usermod -L of a password
        ("*$6$salt$hash", True),  # passwd -S says L for it too
        ("!!$6$salt$hash", True),
        ("$y$j9T$salt$hash", False),
        ("!", False),  # useradd without a password: never had one, not locked
        ("*", False),
        ("!!", False),
        ("!*", False),
        ("", False),
        (None, False),  # no shadow entry
    ],
)
def test_a_locked_password_is_what_passwd_s_calls_locked(field: str | None, locked: bool) -> None:
    assert pam_check.locked_password(field) is locked


class FakeAccountPam:
    def __init__(self, verdict: PamVerdict) -> None:
        self.verdict = verdict
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, service: str, username: str) -> PamVerdict:
        self.calls.append((service, username))
        return self.verdict


def account_authenticator(verdict: PamVerdict, *, auth: AuthConfig | None = None) -> Authenticator:
    return Authenticator(
        auth or AuthConfig(),
        DaemonConfig(min_uid=1),
        pam_check=FakePam(),
        account_check=FakeAccountPam(verdict),
    )


async def test_a_usable_account_is_its_name_uid_and_admin_flag_now() -> None:
    usable = PamVerdict(ok=True, reason="PAM accepted the account")
    assert await account_authenticator(usable).account("daemon") == AccountView(
        user="daemon", uid=1, admin=False
    )
    admins = AuthConfig(admin_users=("daemon",))
    view = await account_authenticator(usable, auth=admins).account("daemon")
    assert view == AccountView(user="daemon", uid=1, admin=True)


async def test_an_account_pam_refuses_is_account_disabled_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refused = PamVerdict(ok=False, reason="PAM: Authentication failure (code 7)")
    with caplog.at_level(logging.WARNING), pytest.raises(AccountDisabled) as caught:
        await account_authenticator(refused).account("daemon")
    assert caught.value.code == "account-disabled"
    assert "locked, expired" in caught.value.message
    assert "Authentication failure (code 7)" in caplog.text


async def test_an_account_pam_could_not_check_is_refused_as_unchecked() -> None:
    failed = PamVerdict(ok=False, reason="PAM did not answer within 10 s", counts=False)
    with pytest.raises(AccountUnchecked):
        await account_authenticator(failed).account("daemon")


async def test_the_account_policy_refuses_before_pam() -> None:
    pam = FakeAccountPam(PamVerdict(ok=True, reason="yes"))
    checker = Authenticator(AuthConfig(), DaemonConfig(min_uid=1000), account_check=pam)
    with pytest.raises(UserRefused):
        await checker.account("daemon")  # uid 1, below min_uid
    with pytest.raises(UnknownUser):
        await checker.account("nosuchuser-x")
    assert pam.calls == []


async def test_the_account_check_goes_to_the_helper_without_a_password() -> None:
    # A stand-in helper that echoes its request: what the real one would be asked.
    echo = helper(
        "import json,sys; r=json.loads(sys.stdin.read()); "
        "print(json.dumps({'ok': False, 'code': 1, 'reason': json.dumps(r, sort_keys=True)}))"
    )
    verdict = await run_account_check("hostd", "alice", argv=echo)
    assert json.loads(verdict.reason.removeprefix("PAM: ").rsplit(" (code", 1)[0]) == {
        "check": "account",
        "service": "hostd",
        "username": "alice",
    }
