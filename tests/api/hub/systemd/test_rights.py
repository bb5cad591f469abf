"""Rights follow the account, against real PAM accounts, the real daemon and hostd-hub as its own
unprivileged user (issue 13, attack 4). The attacker holds a cookie and an API token made while
the account was good; then the admin locks or expires it, takes away its admin group, or
deletes the name and makes it again. Before the fix each of these kept working (tokens never
expired, cookies lasted 14 days, the admin flag was the login's).

The hub here re-checks accounts every RECHECK_S (hub.toml's account_check_interval; the
default and the most it allows is 60 s, tests/api/hub/test_accounts.py).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.hub.systemd.conftest import ADMIN_GROUP, Hub, PamUser, log_in, run, xsrf_of

pytestmark = pytest.mark.systemd

RECHECK_S = 2


@pytest.fixture(scope="module")
def hub_options() -> dict[str, Any]:
    return {"account_check_interval": RECHECK_S, "admin_access": True}


def logged_in(hub: Hub, user: PamUser) -> tuple[httpx.Client, str]:
    """A browser with ``user``'s cookie, and an API token made through the token page."""
    browser = hub.browser()
    assert log_in(browser, user.name, user.password).status_code == 303
    page = browser.get("/hub/token")
    made = browser.post("/hub/token", data={"_xsrf": xsrf_of(page.text), "note": "attack"})
    assert made.status_code == 200, made.text
    start = made.text.index('id="new-token">') + len('id="new-token">')
    return browser, made.text[start : made.text.index("<", start)]


def with_token(hub: Hub, token: str) -> httpx.Client:
    return httpx.Client(base_url=hub.url, timeout=60, headers={"Authorization": f"token {token}"})


def past_the_recheck() -> None:
    time.sleep(RECHECK_S + 1)


def sent_to_login(response: httpx.Response) -> bool:
    return response.status_code in (302, 303) and "/hub/login" in response.headers["location"]


@pytest.mark.parametrize("lock", [["-L"], ["-e", "1"]], ids=["usermod -L", "usermod -e 1"])
def test_a_locked_accounts_token_cannot_start_and_its_cookie_stops_working(
    hub: Hub, make_pam_user: Callable[..., PamUser], lock: list[str]
) -> None:
    dave = make_pam_user()
    browser, token = logged_in(hub, dave)
    with contextlib.closing(browser), with_token(hub, token) as script:
        assert script.get("/hub/api/user").json()["name"] == dave.name  # the control
        run("usermod", *lock, dave.name)
        past_the_recheck()
        start = script.post(f"/hub/api/users/{dave.name}/server")
        who = script.get("/hub/api/user")
        home = browser.get("/hub/home")
        lab = browser.get(f"/user/{dave.name}/lab")
    assert start.status_code == 403, start.text
    assert who.status_code == 403
    assert sent_to_login(home) and lab.status_code in (302, 303, 403)
    units = run(
        "systemctl", "list-units", "--all", "--plain", "--no-legend", f"jupyter-{dave.name}*"
    )
    assert units.stdout.strip() == ""
    with hub.browser() as again:
        assert log_in(again, dave.name, dave.password).status_code != 303


def test_an_admin_taken_out_of_the_admin_group_cannot_mint_a_token_for_bob(
    hub: Hub, make_pam_user: Callable[..., PamUser]
) -> None:
    boss, bob = make_pam_user(admin=True), make_pam_user()
    browser, token = logged_in(hub, boss)
    with contextlib.closing(browser), with_token(hub, token) as script:
        headers = {"X-XSRFToken": xsrf_of(browser.get("/hub/home").text)}
        made = browser.post(f"/hub/api/users/{bob.name}/tokens", json={}, headers=headers)
        assert made.status_code == 201, made.text  # the control: an admin with admin_access
        run("gpasswd", "-d", boss.name, ADMIN_GROUP)
        past_the_recheck()
        minted = browser.post(f"/hub/api/users/{bob.name}/tokens", json={}, headers=headers)
        by_token = script.post(f"/hub/api/users/{bob.name}/tokens", json={})
        listed = script.get("/hub/api/users")
        own = script.get("/hub/api/user")
    assert (minted.status_code, by_token.status_code, listed.status_code) == (403, 403, 403)
    assert own.status_code == 200 and own.json()["admin"] is False


def test_a_name_deleted_and_made_again_inherits_no_cookie_and_no_token(
    hub: Hub, make_pam_user: Callable[..., PamUser]
) -> None:
    carl = make_pam_user()
    browser, token = logged_in(hub, carl)
    old_uid = int(subprocess.check_output(["id", "-u", carl.name]))
    run("userdel", "-r", "-f", carl.name)
    # Another person gets the name (and another uid, as when accounts were made meanwhile).
    run("useradd", "-m", "-s", "/bin/bash", "-u", str(old_uid + 1000), carl.name)
    subprocess.run(["chpasswd"], input=f"{carl.name}:{carl.password}\n", text=True, check=True)
    past_the_recheck()
    with contextlib.closing(browser), with_token(hub, token) as script:
        start = script.post(f"/hub/api/users/{carl.name}/server")
        home = browser.get("/hub/home")
    assert start.status_code == 403 and sent_to_login(home)
    with hub.browser() as fresh:  # the new carl logs in with his own password: a new session
        assert log_in(fresh, carl.name, carl.password).status_code == 303
        assert fresh.get("/hub/home").status_code == 200


def test_a_token_has_a_lifetime(hub: Hub, make_pam_user: Callable[..., PamUser]) -> None:
    erin = make_pam_user()
    browser, token = logged_in(hub, erin)
    with contextlib.closing(browser), with_token(hub, token) as script:
        short = script.post(f"/hub/api/users/{erin.name}/tokens", json={"expires_in": 2})
        assert short.status_code == 201 and short.json()["expires_at"] is not None
        listed = script.get(f"/hub/api/users/{erin.name}/tokens").json()["api_tokens"]
        assert all(model["expires_at"] is not None for model in listed)
        with with_token(hub, short.json()["token"]) as brief:
            assert brief.get("/hub/api/user").status_code == 200
            time.sleep(2.5)
            assert brief.get("/hub/api/user").status_code == 403
