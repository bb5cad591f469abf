"""Rights follow the account (issue 13, attack 4), against the hub over the fake daemon: a
locked or expired account's cookie and tokens stop working, an admin who is no longer one loses
the rights of one, a name deleted and made again inherits nothing, and every token expires.

The attacker holds a cookie or a token made while the account was good; the daemon's answer
(GET /v1/accounts/{user}) then changes, as it does after ``usermod -L``, a change of [auth]
admin_users, or ``userdel`` + ``useradd``. The hub here re-checks every RECHECK_S; the default
(60 s, the most hub.toml allows) is test_accounts.py's. Real PAM and real accounts:
tests/api/hub/systemd/test_rights.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import log_in, xsrf_of

RECHECK_S = 0.5


@pytest.fixture
def hub_options() -> dict[str, Any]:
    return {"account_check_interval": RECHECK_S, "admin_access": True}


async def token_of(hub: HubUnderTest, client: httpx.AsyncClient) -> str:
    """An API token made through the token page by the logged-in ``client``."""
    page = await client.get("/hub/token")
    response = await client.post("/hub/token", data={"_xsrf": xsrf_of(page.text), "note": "t"})
    assert response.status_code == 200
    start = response.text.index('id="new-token">') + len('id="new-token">')
    return response.text[start : response.text.index("<", start)]


def with_token(hub: HubUnderTest, token: str) -> httpx.AsyncClient:
    return hub.client(headers={"Authorization": f"token {token}"})


async def past_the_recheck() -> None:
    await asyncio.sleep(RECHECK_S + 0.3)


async def test_a_locked_accounts_token_and_cookie_stop_working(hub: HubUnderTest) -> None:
    async with hub.client() as browser:
        await log_in(browser, "alice")
        token = await token_of(hub, browser)
        async with with_token(hub, token) as script:
            assert (await script.get("/hub/api/user")).status_code == 200  # the control
            hub.fake.disabled.add("alice")  # usermod -L alice, as the daemon now says
            await past_the_recheck()
            start = await script.post("/hub/api/users/alice/server")
        home = await browser.get("/hub/home")
        lab = await browser.get("/user/alice/lab")
    assert start.status_code == 403
    assert home.status_code in (302, 303) and "/hub/login" in home.headers["location"]
    assert lab.status_code in (302, 303, 403) and hub.upstream_seen == []
    assert hub.fake.starts == 0
    # Unlocked, the same cookie works again: the hub ended nothing, the account decides.
    hub.fake.disabled.discard("alice")
    await past_the_recheck()
    async with hub.client(cookies=browser.cookies) as again:
        assert (await again.get("/hub/home")).status_code == 200


async def test_an_admin_no_longer_one_loses_the_rights_of_one(hub: HubUnderTest) -> None:
    async with hub.client() as browser:
        await log_in(browser, "carol")  # an admin, with admin_access
        token = await token_of(hub, browser)
        xsrf = xsrf_of((await browser.get("/hub/home")).text)
        headers = {"X-XSRFToken": xsrf}
        made = await browser.post("/hub/api/users/bob/tokens", json={}, headers=headers)
        assert made.status_code == 201  # the control: an admin may
        hub.fake.admins.discard("carol")  # removed from admin_users
        await past_the_recheck()
        minted = await browser.post("/hub/api/users/bob/tokens", json={}, headers=headers)
        admin_page = await browser.get("/hub/admin")
        async with with_token(hub, token) as script:
            listed = await script.get("/hub/api/users")
            bobs = await script.post("/hub/api/users/bob/server")
            own = await script.get("/hub/api/user")
    assert minted.status_code == 403
    assert admin_page.status_code == 403
    assert listed.status_code == 403 and bobs.status_code == 403
    assert own.status_code == 200 and own.json()["name"] == "carol"  # still herself
    assert own.json()["admin"] is False
    record = hub.store.user("carol")
    assert record is not None and not record.admin


async def test_a_name_made_again_inherits_no_cookie_and_no_token(hub: HubUnderTest) -> None:
    async with hub.client() as browser:
        await log_in(browser, "alice")
        token = await token_of(hub, browser)
        hub.fake.uids["alice"] = 7777  # userdel alice; useradd alice: another account
        await past_the_recheck()
        home = await browser.get("/hub/home")
        async with with_token(hub, token) as script:
            start = await script.post("/hub/api/users/alice/server")
    assert home.status_code in (302, 303) and start.status_code == 403
    assert hub.fake.starts == 0
    async with hub.client() as fresh:  # the new alice logs in with her own password
        await log_in(fresh, "alice")
        assert (await fresh.get("/hub/home")).status_code == 200
    rows = hub.store.tokens("alice")
    assert [row.uid for row in rows] != [7777]  # the old token stays the old account's


async def test_tokens_expire_by_default_and_expires_in_is_bounded(hub: HubUnderTest) -> None:
    longest = hub.config.token_max_age_s
    async with hub.client() as browser:
        await log_in(browser, "alice")
        token = await token_of(hub, browser)
    async with with_token(hub, token) as script:
        default = (await script.post("/hub/api/users/alice/tokens", json={})).json()
        short = await script.post("/hub/api/users/alice/tokens", json={"expires_in": 120})
        refused = [
            await script.post("/hub/api/users/alice/tokens", json={"expires_in": value})
            for value in (longest + 1, 0, -5, 1.5, "60", True)
        ]
        listed = (await script.get("/hub/api/users/alice/tokens")).json()["api_tokens"]
    now = datetime.now(UTC)

    def expires(model: dict[str, Any]) -> timedelta:
        return datetime.fromisoformat(model["expires_at"]) - now

    assert abs(expires(default) - timedelta(seconds=longest)) < timedelta(seconds=30)
    assert short.status_code == 201
    assert timedelta(seconds=90) < expires(short.json()) <= timedelta(seconds=120)
    for response in refused:
        assert response.status_code == 400, response.text
        assert "expires_in" in response.json()["message"]
    assert all(model["expires_at"] is not None for model in listed)  # the page's token too


async def test_an_expired_token_is_refused(hub: HubUnderTest) -> None:
    hub.store.record_login("alice", ok=True)
    token, _ = hub.make_token("alice", lifetime=timedelta(seconds=1))
    async with with_token(hub, token) as script:
        assert (await script.get("/hub/api/user")).status_code == 200
        await asyncio.sleep(1.2)
        assert (await script.get("/hub/api/user")).status_code == 403


async def test_no_token_is_made_for_an_account_that_may_not_use_the_hub(hub: HubUnderTest) -> None:
    async with hub.client() as browser:
        await log_in(browser, "carol")
        xsrf = xsrf_of((await browser.get("/hub/home")).text)
        hub.fake.disabled.add("bob")
        made = await browser.post(
            "/hub/api/users/bob/tokens", json={}, headers={"X-XSRFToken": xsrf}
        )
    assert made.status_code == 403 and "bob" in made.json()["message"]
    assert hub.store.tokens("bob") == []
