"""The hub and [[profile_list]]: the start page offers the choices the daemon says the user
may take, with their limits, starts the chosen one and shows it; the hub API takes the slug
as JupyterHub's user_options ({"profile": slug}). The daemon's own checks (visibility, caps)
are tests/hostd/daemon/test_choices.py and the systemd tier's."""

from __future__ import annotations

import asyncio
import re

from hostd.units import SessionPolicy
from hostd.units.choices import ProfileView
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import log_in, xsrf_of
from tests.api.hub.test_api import api, token_of

SMALL = ProfileView(
    slug="small",
    display_name="Small: 2 GB, 1 CPU",
    description="For notebooks & teaching",
    mem_limit_bytes=2 * 2**30,
    cpu_limit=1.0,
)
LARGE = ProfileView(
    slug="large", display_name="Large", default=True, mem_limit_bytes=16 * 2**30, cpu_limit=4.0
)


async def test_the_start_page_offers_the_choices_with_their_limits(hub: HubUnderTest) -> None:
    hub.fake.choices["alice"] = [SMALL, LARGE]
    async with hub.client() as client:
        await log_in(client, "alice")
        page = (await client.get("/hub/home")).text
    form = page[page.index('id="profile-choices"') : page.index('id="start"')]
    assert re.findall(r'name="profile" id="profile-(\w+)" value="(\w+)"', form) == [
        ("small", "small"),
        ("large", "large"),
    ]
    assert 'value="large" checked' in form and 'value="small" checked' not in form
    assert "2.0G memory · 1 CPU" in form and "16.0G memory · 4 CPU" in form
    assert "For notebooks &amp; teaching" in form  # escaped


async def test_the_chosen_profile_is_started_and_shown(hub: HubUnderTest) -> None:
    hub.fake.choices["alice"] = [SMALL, LARGE]
    async with hub.client() as client:
        await log_in(client, "alice")
        home = await client.get("/hub/home")
        started = await client.post(
            "/hub/spawn/alice", data={"_xsrf": xsrf_of(home.text), "profile": "small"}
        )
        assert started.status_code == 303
        await asyncio.sleep(0.1)
        page = (await client.get("/hub/home")).text
    assert hub.fake.profile_asked == "small"
    assert 'id="server-profile" data-profile="small"' in page
    assert "Profile: <strong>Small: 2 GB, 1 CPU</strong>" in page
    assert 'id="profile-choices"' not in page  # no form while it runs


async def test_a_hidden_profile_sent_by_hand_is_refused_and_said(hub: HubUnderTest) -> None:
    hub.fake.choices["alice"] = [SMALL]
    async with hub.client() as client:
        await log_in(client, "alice")
        home = await client.get("/hub/home")
        await client.post("/hub/spawn/alice", data={"_xsrf": xsrf_of(home.text), "profile": "gpu"})
        page = (await client.get("/hub/home")).text
    assert "no profile gpu to choose (the choices: small)" in page
    assert hub.fake.sessions.get("alice") is None


async def test_without_choices_the_page_is_as_before(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        await log_in(client, "alice")
        page = (await client.get("/hub/home")).text
        home = await client.post("/hub/spawn/alice", data={"_xsrf": xsrf_of(page)})
    assert home.status_code == 303
    assert "profile-choices" not in page and "server-profile" not in page
    assert hub.fake.profile_asked is None


async def test_the_hub_api_takes_the_slug_as_user_options(hub: HubUnderTest) -> None:
    hub.fake.choices["alice"] = [SMALL, LARGE]
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        hidden = await client.post("/hub/api/users/alice/server", json={"profile": "gpu"})
        malformed = await client.post("/hub/api/users/alice/server", json={"profile": 5})
        started = await client.post("/hub/api/users/alice/server", json={"profile": "small"})
    assert (hidden.status_code, hidden.json()["message"]) == (
        400,
        "no profile gpu to choose (the choices: small, large)",
    )
    assert malformed.status_code == 400 and "profile" in malformed.json()["message"]
    assert started.status_code == 201
    assert hub.fake.sessions["alice"].profile_slug == "small"


async def test_the_admin_page_shows_each_sessions_profile(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice", profile_slug="large")
    hub.fake.add_session("bob")
    async with hub.client() as client:
        await log_in(client, "carol")
        page = (await client.get("/hub/admin")).text
    assert '<small class="profile" data-profile="large">profile large</small>' in page
    assert page.count('class="profile"') == 1


async def test_a_named_server_takes_a_choice_as_the_default_server_does(
    hub: HubUnderTest,
) -> None:
    hub.fake.session_policy = SessionPolicy(cmd=("/bin/true",), named_server_limit=2)
    hub.fake.choices["alice"] = [SMALL, LARGE]
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        started = await client.post("/hub/api/users/alice/servers/lab", json={"profile": "small"})
        model = (await client.get("/hub/api/users/alice")).json()
    assert started.status_code == 201, started.text
    assert hub.fake.profile_asked == "small"
    assert hub.fake.sessions["alice:lab"].profile_slug == "small"
    assert model["servers"]["lab"]["ready"] is True
