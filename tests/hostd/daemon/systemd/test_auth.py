"""POST /v1/auth against real PAM: accounts made with useradd and chpasswd, checked by the daemon
through /etc/pam.d/hostd (packaging/pam.d/hostd, installed in the testbed's overlay only).
No mocks: pam_unix reads the overlay's /etc/shadow, as root, in hostd's helper process.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hostd.daemon.login import FAILURE_FLOOR_S, LOGIN_FAILED_MESSAGE
from tests import REPO
from tests.hostd.daemon.systemd.conftest import BASE_POLICY, Daemon, as_member, units_left

pytestmark = pytest.mark.systemd

PAM_SOURCE = REPO / "packaging" / "pam.d" / "hostd"
PAM_FILE = Path("/etc/pam.d/hostd")
ADMIN_GROUP = "hostd-test-admins"
ALLOWED_GROUP = "hostd-test-allowed"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("hostd", timeout=60)
        self.unix_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.unix_path)


def auth(d: Daemon, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body) of POST /v1/auth on the daemon's socket."""
    conn = _UnixConnection(d.socket)
    try:
        conn.request(
            "POST", "/v1/auth", json.dumps(body), headers={"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        data = response.read()
        headers = {key.lower(): value for key, value in response.getheaders()}
        return response.status, headers, json.loads(data)
    finally:
        conn.close()


def login(d: Daemon, username: str, password: str) -> tuple[int, dict[str, str], Any]:
    return auth(d, {"username": username, "password": password})


def set_password(user: str, password: str) -> None:
    subprocess.run(["chpasswd"], input=f"{user}:{password}\n", text=True, check=True)


def new_password() -> str:
    return f"Pw-{uuid.uuid4().hex}"


def journal_text() -> bytes:
    """Every field of every entry in the journal (the password must be in none)."""
    subprocess.run(["journalctl", "--sync"], check=False, capture_output=True)
    out = subprocess.run(
        ["journalctl", "--no-pager", "-o", "export"], capture_output=True, check=True
    )
    return out.stdout


def hostd_messages(user: str) -> list[str]:
    """The daemon's journal messages about user (its HOSTD_USER field)."""
    subprocess.run(["journalctl", "--sync"], check=False, capture_output=True)
    out = subprocess.run(
        ["journalctl", "--no-pager", "-o", "json", "SYSLOG_IDENTIFIER=hostd", f"HOSTD_USER={user}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line)["MESSAGE"] for line in out.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module", autouse=True)
def pam_service() -> Iterator[None]:
    """packaging/pam.d/hostd as /etc/pam.d/hostd: inside the testbed, whose / is an overlay, or
    the throw-away VM of packaging/vm (HOSTD_VM=1)."""
    if "HOSTD_TESTBED" not in os.environ and os.environ.get("HOSTD_VM") != "1":
        pytest.skip(
            "installs /etc/pam.d/hostd and sets passwords: only inside packaging/testbed or vm"
        )
    made = not PAM_FILE.exists()
    if made:
        shutil.copy(PAM_SOURCE, PAM_FILE)
    for group in (ADMIN_GROUP, ALLOWED_GROUP):
        subprocess.run(["groupadd", "-f", group], check=True)
    yield
    for group in (ADMIN_GROUP, ALLOWED_GROUP):
        subprocess.run(["groupdel", group], check=False, capture_output=True)
    if made:
        PAM_FILE.unlink(missing_ok=True)  # the install tests may have purged it


def auth_policy(**auth: Any) -> str:
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in auth.items())
    return BASE_POLICY + "\n[auth]\n" + lines


def test_the_pam_file_is_debians_stacks() -> None:
    lines = [line for line in PAM_FILE.read_text().splitlines() if not line.startswith("#")]
    assert lines == ["@include common-auth", "@include common-account"]


def test_a_user_logs_in_with_the_right_password_and_not_a_wrong_one(
    daemon: Callable[..., Daemon], make_user: Callable[..., str]
) -> None:
    alice, boss, staff = make_user(), make_user(), make_user(groups=ADMIN_GROUP)
    passwords = {user: new_password() for user in (alice, boss, staff)}
    for user, password in passwords.items():
        set_password(user, password)
    d = daemon(auth_policy(admin_users=[boss], admin_groups=[ADMIN_GROUP]))

    def uid(user: str) -> int:
        return int(subprocess.check_output(["id", "-u", user]))

    def result(user: str, admin: bool) -> tuple[int, dict[str, Any]]:
        return (200, {"user": user, "admin": admin, "uid": uid(user)})

    assert login(d, alice, passwords[alice])[::2] == result(alice, False)
    assert login(d, boss, passwords[boss])[::2] == result(boss, True)
    assert login(d, staff, passwords[staff])[::2] == result(staff, True)

    wrong = login(d, alice, passwords[boss])
    unknown = login(d, f"nobody{uuid.uuid4().hex[:8]}", passwords[alice])
    assert wrong[0] == unknown[0] == 401
    assert wrong[2] == unknown[2] == {"code": "login-failed", "message": LOGIN_FAILED_MESSAGE}
    assert "Authentication failure" in hostd_messages(alice)[-1]  # PAM's own reason, logged


def test_root_system_accounts_and_users_outside_allowed_groups_are_refused(
    daemon: Callable[..., Daemon], make_user: Callable[..., str]
) -> None:
    inside, outside = make_user(groups=ALLOWED_GROUP), make_user()
    system = f"sys{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--system", "-s", "/bin/bash", system], check=True)
    root_hash = subprocess.run(
        ["getent", "shadow", "root"], capture_output=True, text=True, check=True
    ).stdout.split(":")[1]
    password = new_password()
    try:
        for user in ("root", system, inside, outside):
            set_password(user, password)  # the right password, every time
        d = daemon(auth_policy())
        assert login(d, inside, password)[0] == 200
        for user in ("root", system):
            status, _, body = login(d, user, password)
            assert (status, body) == (
                401,
                {"code": "login-failed", "message": LOGIN_FAILED_MESSAGE},
            )
        assert "root may not have a session" in hostd_messages("root")[-1]
        assert "is a system account" in hostd_messages(system)[-1]

        # Text before [session] is in [daemon]: the policy's first keys go there.
        only_group = daemon(f'allowed_groups = ["{ALLOWED_GROUP}"]\n' + auth_policy())
        assert login(only_group, inside, password)[0] == 200
        assert login(only_group, outside, password)[0] == 401
        assert "is not allowed a session (allowed: group " in hostd_messages(outside)[-1]
        # allowed_users (TLJH's users.allowed): named, the account outside the group may.
        named = daemon(
            f'allowed_groups = ["{ALLOWED_GROUP}"]\nallowed_users = ["{outside}"]\n' + auth_policy()
        )
        assert login(named, outside, password)[0] == 200
        assert login(named, inside, password)[0] == 200
    finally:
        subprocess.run(["usermod", "-p", root_hash, "root"], check=True)
        subprocess.run(["userdel", "-r", "-f", system], capture_output=True, check=False)


def test_locked_and_expired_accounts_are_refused(
    daemon: Callable[..., Daemon], make_user: Callable[..., str]
) -> None:
    user, password = make_user(), new_password()
    set_password(user, password)
    d = daemon(auth_policy())
    assert login(d, user, password)[0] == 200

    subprocess.run(["usermod", "-L", user], check=True)  # "!" before the hash
    assert login(d, user, password)[0] == 401
    subprocess.run(["usermod", "-U", user], check=True)
    assert login(d, user, password)[0] == 200

    subprocess.run(["chage", "-E", "0", user], check=True)  # expired on 1 January 1970
    assert login(d, user, password)[0] == 401
    subprocess.run(["chage", "-E", "-1", user], check=True)
    assert login(d, user, password)[0] == 200

    # The password is right and pam_authenticate says so; pam_acct_mgmt refuses the account
    # (PAM_NEW_AUTHTOK_REQD, 12): the account check runs, and the hub changes no password.
    subprocess.run(["chage", "-d", "0", user], check=True)
    assert login(d, user, password)[0] == 401
    assert hostd_messages(user)[-1].endswith("(code 12)")
    # Without a password (a start, the hub's re-check) the account is good: only its
    # password must change, which no start and no cookie uses.
    assert d.api("GET", f"/v1/accounts/{user}")[0] == 200


def test_the_time_of_a_refusal_does_not_tell_an_unknown_name_from_a_real_account(
    daemon: Callable[..., Daemon], make_user: Callable[..., str]
) -> None:
    # The attacker times refused logins: before the fix an unknown name was answered in
    # 2.00-2.03 s and a real account's wrong password after pam_unix's randomised delay
    # (median 2.23 s, most over 2.10 s).
    accounts = [make_user() for _ in range(4)]
    for user in accounts:
        set_password(user, new_password())
    d = daemon()
    taken: dict[str, list[float]] = {"unknown": [], "real": []}
    for user in accounts:
        for kind, name in (("unknown", f"nobody{uuid.uuid4().hex[:8]}"), ("real", user)):
            started = time.monotonic()
            assert login(d, name, "not-the-password")[0] == 401
            taken[kind].append(time.monotonic() - started)
    for seconds in taken["unknown"] + taken["real"]:
        assert FAILURE_FLOOR_S <= seconds < FAILURE_FLOOR_S + 0.3, taken


def test_five_wrong_passwords_lock_the_right_one_out_until_the_lockout_ends(
    daemon: Callable[..., Daemon], make_user: Callable[..., str]
) -> None:
    user, other = make_user(), make_user()
    password = new_password()
    for name in (user, other):
        set_password(name, password)
    d = daemon(auth_policy(lockout_duration=6))
    for _ in range(5):
        assert login(d, user, "wrong-" + password)[0] == 401
    status, headers, body = login(d, user, password)
    assert (status, body["code"]) == (429, "locked-out")
    retry_after = int(headers["retry-after"])
    assert 1 <= retry_after <= 6
    assert body["details"] == {"retry_after_s": retry_after}
    assert any("is locked out for 6 s" in message for message in hostd_messages(user))
    assert login(d, other, password)[0] == 200  # one name's lockout is not another's

    time.sleep(retry_after + 0.2)
    status, _, body = login(d, user, password)
    assert (status, body["user"], body["admin"]) == (200, user, False)


def test_the_password_never_reaches_the_journal_or_the_log(
    daemon: Callable[..., Daemon], make_user: Callable[..., str]
) -> None:
    user, password = make_user(), new_password()
    set_password(user, password)
    wrong = new_password()
    d = daemon(auth_policy())
    assert login(d, user, password)[0] == 200
    assert login(d, user, wrong)[0] == 401
    assert login(d, f"x{uuid.uuid4().hex[:8]}", wrong)[0] == 401  # an unknown user
    assert login(d, "root", wrong)[0] == 401
    assert auth(d, {"username": user, "password": wrong + "\0"})[0] == 422
    assert auth(d, {"username": user, "password": wrong, "otp": 1})[0] == 422
    messages = hostd_messages(user)
    assert any("failed" in message for message in messages)  # failures are logged ...
    assert f"login of {user}" in messages
    d.terminate()
    for text in (journal_text(), d.log.read_bytes()):  # ... without a password anywhere
        assert password.encode() not in text
        assert wrong.encode() not in text


# -- rights follow the account: a locked or expired account gets no session -----------------


@pytest.mark.parametrize(
    ("lock", "unlock"),
    [(["-L"], ["-U"]), (["-e", "1"], ["-e", ""])],
    ids=["usermod -L", "usermod -e 1"],
)
def test_a_locked_or_expired_account_gets_no_session_whoever_asks(
    daemon: Callable[..., Daemon],
    make_user: Callable[..., str],
    lock: list[str],
    unlock: list[str],
) -> None:
    # The attacker: dave, a real account (in group hostd, so he may ask for himself), whose
    # account the admin locked or expired. Before the fix the start went through for root
    # and for dave himself (201): only the hub's login checked the account.
    d = daemon(auth_policy())
    dave = make_user({}, groups="hostd")
    set_password(dave, new_password())
    uid = int(subprocess.check_output(["id", "-u", dave]))
    # The control: the same account, usable, gets its session.
    status, body = d.api("POST", f"/v1/sessions/{dave}", {})
    assert (status, body["state"]) == (201, "running"), body
    assert d.api("DELETE", f"/v1/sessions/{dave}")[0] == 200

    subprocess.run(["usermod", *lock, dave], check=True)
    for status, body in (
        d.api("POST", f"/v1/sessions/{dave}", {}),  # root (the hub, the spawner act alike)
        as_member(d, dave, "POST", f"/v1/sessions/{dave}"),
    ):
        assert (status, body.get("code")) == (403, "account-disabled"), body
        assert "locked, expired" in body["message"]
    assert units_left(f"jupyter-{dave}") == []
    status, body = d.api("GET", f"/v1/accounts/{dave}")
    assert (status, body["code"]) == (403, "account-disabled")
    assert any("account of" in message for message in hostd_messages(dave))

    subprocess.run(["usermod", *unlock, dave], check=True)
    assert d.api("GET", f"/v1/accounts/{dave}") == (200, {"user": dave, "uid": uid, "admin": False})


def test_an_account_that_never_had_a_password_still_gets_its_session(
    daemon: Callable[..., Daemon], make_user: Callable[..., str]
) -> None:
    # useradd without a password leaves "!" in /etc/shadow (passwd -S: "L"), as JupyterHub
    # setups with OAuth make accounts: not a locked password, so its sessions start.
    d = daemon(auth_policy())
    user = make_user({})
    assert subprocess.check_output(["passwd", "-S", user], text=True).split()[1] == "L"
    status, body = d.api("POST", f"/v1/sessions/{user}", {})
    assert (status, body["state"]) == (201, "running"), body
    assert d.api("DELETE", f"/v1/sessions/{user}")[0] == 200
