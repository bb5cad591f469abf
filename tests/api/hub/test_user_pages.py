"""A user's page against the hub (issue 13, attack 2), over the fake daemon: the partial guard.

Users' servers share the hub's origin, so a script that alice serves from her own server runs,
when an admin opens /user/alice/lab (admin_access), with the admin's hub cookie. The attack as it
was done: the script fetches /hub/home for the admin's _xsrf, then mints an API token for bob.
Each request below carries the headers Chromium sends for that script's fetch(). The hub now
refuses both; a navigation from a user's page to the hub (JupyterLab's link back) still works.
What the guard cannot stop (a page the script opens in a window of its own, a forged Referer)
is in SECURITY.md.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import log_in, xsrf_of

ADMIN = "carol"  # tests.api.hub.fake.ADMINS


@pytest.fixture
def hub_options() -> dict[str, Any]:
    return {"admin_access": True}


def scripts_fetch(hub: HubUnderTest, page: str | None) -> dict[str, str]:
    """The headers of a fetch() made by a script of ``page`` (None: with no Referer)."""
    headers = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
    if page is not None:
        headers["Referer"] = hub.url + page
    return headers


def navigation(hub: HubUnderTest, page: str) -> dict[str, str]:
    """The headers of a click on a link in ``page`` to another page of the same origin."""
    return {
        "Sec-Fetch-Site": "same-origin",
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "document",
        "Referer": hub.url + page,
    }


async def logged_in_admin(hub: HubUnderTest, browser: httpx.AsyncClient) -> str:
    assert (await log_in(browser, ADMIN)).status_code == 303
    return xsrf_of((await browser.get("/hub/home")).text)


async def test_a_users_page_cannot_read_the_admins_xsrf_from_a_hub_page(
    hub: HubUnderTest,
) -> None:
    async with hub.client() as browser:
        await logged_in_admin(hub, browser)
        for page in ("/user/alice/lab", None):  # with its Referer, and with none sent
            read = await browser.get("/hub/home", headers=scripts_fetch(hub, page))
            assert read.status_code == 403, (page, read.status_code)
            assert "_xsrf" not in read.text


async def test_a_users_page_cannot_mint_a_token_for_bob_with_the_admins_cookie(
    hub: HubUnderTest,
) -> None:
    async with hub.client() as browser:
        xsrf = await logged_in_admin(hub, browser)
        attack = await browser.post(
            "/hub/api/users/bob/tokens",
            json={"note": "left in alice's home"},
            headers={"X-XSRFToken": xsrf, **scripts_fetch(hub, "/user/alice/lab")},
        )
        listing = await browser.get(
            "/hub/api/users/bob/tokens", headers=scripts_fetch(hub, "/user/alice/lab")
        )
        # The control: the same request from the hub's own page is the admin's and works.
        control = await browser.post(
            "/hub/api/users/bob/tokens",
            json={"note": "the admin's own"},
            headers={"X-XSRFToken": xsrf, **scripts_fetch(hub, "/hub/admin")},
        )
    assert attack.status_code == 403, attack.text
    assert attack.json()["message"].startswith("refused: a page of a user's server")
    assert listing.status_code == 403
    assert control.status_code == 201, control.text


async def test_a_link_from_a_users_page_to_the_hub_still_opens_it(hub: HubUnderTest) -> None:
    async with hub.client() as browser:
        xsrf = await logged_in_admin(hub, browser)
        home = await browser.get("/hub/home", headers=navigation(hub, "/user/alice/lab"))
        # A form a user's page posts to the hub (with the _xsrf its script read) is refused even
        # as a navigation.
        stop = await browser.post(
            "/hub/stop/alice", data={"_xsrf": xsrf}, headers=navigation(hub, "/user/alice/lab")
        )
    assert home.status_code == 200
    assert stop.status_code == 403


async def test_requests_without_the_hubs_cookie_are_not_the_guards(hub: HubUnderTest) -> None:
    async with hub.client() as anonymous:
        login = await anonymous.get("/hub/login", headers=navigation(hub, "/user/alice/lab"))
        api = await anonymous.get("/hub/api/", headers=scripts_fetch(hub, "/user/alice/lab"))
    assert login.status_code == 200
    assert api.status_code == 200


async def test_the_logs_page_script_reads_follow_and_a_users_page_still_cannot(
    hub: HubUnderTest,
) -> None:
    """The logs page's Follow (hub.js) fetches /hub/logs/<name>/follow with the page's CSRF
    token, let through for this origin only. Without the token (a user's page that hides its
    Referer: it cannot read the logs page to learn it) the read is refused; the logs page
    itself stays refused to scripts, and a user's page that says so (Referer) is refused."""
    hub.fake.add_session(ADMIN)
    hub.fake.follow_forever = False
    async with hub.client() as browser:
        await logged_in_admin(hub, browser)
        logs_page = (await browser.get(f"/hub/logs/{ADMIN}")).text
        token = re.search(r'data-xsrf="([^"]+)"', logs_page)
        assert token is not None, logs_page
        own = await browser.get(
            f"/hub/logs/{ADMIN}/follow",
            headers={**scripts_fetch(hub, "/hub/logs/carol"), "X-XSRFToken": token[1]},
        )
        hidden_referer = await browser.get(
            f"/hub/logs/{ADMIN}/follow", headers=scripts_fetch(hub, None)
        )
        wrong_token = await browser.get(
            f"/hub/logs/{ADMIN}/follow",
            headers={**scripts_fetch(hub, None), "X-XSRFToken": "x" + token[1]},
        )
        page = await browser.get(
            f"/hub/logs/{ADMIN}", headers=scripts_fetch(hub, "/hub/logs/carol")
        )
        from_lab = await browser.get(
            f"/hub/logs/{ADMIN}/follow", headers=scripts_fetch(hub, "/user/alice/lab")
        )
        other_site = await browser.get(
            f"/hub/logs/{ADMIN}/follow",
            headers={**scripts_fetch(hub, None), "Sec-Fetch-Site": "cross-site"},
        )
    assert own.status_code == 200 and f"{ADMIN} line 2" in own.text
    assert page.status_code == from_lab.status_code == other_site.status_code == 403
    assert hidden_referer.status_code == wrong_token.status_code == 403
