"""Named servers through the hub: JupyterHub 6's API shapes (/hub/api/users/{name}/servers/
{server}, the user model's servers dict), /user/<name>/<server>/ routed to that server, the home
page's list and forms, and the attacks: another user's server, a name that tries to escape."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from hostd.units import SessionPolicy
from hostd.units.errors import TooManyServers
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import log_in, xsrf_of
from tests.api.hub.test_api import api, token_of

NAMED_ON = SessionPolicy(cmd=("/bin/true",), named_server_limit=2)


@contextlib.asynccontextmanager
async def logged_in(hub: HubUnderTest, user: str) -> AsyncIterator[httpx.AsyncClient]:
    async with hub.client() as client:
        assert (await log_in(client, user)).status_code == 303
        yield client


async def test_a_named_server_starts_shows_in_the_user_model_and_stops(hub: HubUnderTest) -> None:
    hub.fake.session_policy = NAMED_ON
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        started = await client.post("/hub/api/users/alice/servers/lab")
        model = (await client.get("/hub/api/users/alice")).json()
        stopped = await client.request(
            "DELETE", "/hub/api/users/alice/servers/lab", json={"remove": True}
        )
        after = (await client.get("/hub/api/users/alice")).json()
    assert started.status_code == 201
    lab = model["servers"]["lab"]
    assert (lab["name"], lab["ready"], lab["url"]) == ("lab", True, "/user/alice/lab/")
    assert lab["progress_url"] == "/hub/api/users/alice/servers/lab/progress"
    assert "" not in model["servers"]  # the default server was never started
    assert stopped.status_code == 204
    assert after["servers"] == {}
    # The daemon was asked for alice's server "lab", not for a user "alice:lab" or "lab".
    starts = [call for call in hub.fake.calls if call[0] == "start"]
    assert [call[1] for call in starts] == ["alice"]
    assert hub.fake.sessions["alice:lab"].server == "lab"


@pytest.mark.parametrize("name", ["Lab", "..", "a.slice", "x" * 33, "%2e%2e", "a%2Fb"])
async def test_an_invalid_server_name_is_400_and_reaches_no_daemon_start(
    hub: HubUnderTest, name: str
) -> None:
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        response = await client.post(f"/hub/api/users/alice/servers/{name}")
    # ".." is resolved by the client to /hub/api/users/alice: 405, no start either.
    assert response.status_code in (400, 404, 405), response.text
    if response.status_code == 400:
        assert "invalid server name" in response.json()["message"]
    assert not [call for call in hub.fake.calls if call[0] == "start"]


async def test_another_users_named_server_is_403(hub: HubUnderTest) -> None:
    hub.fake.session_policy = NAMED_ON
    hub.fake.add_session("alice")
    token = await token_of(hub, "bob")
    async with api(hub, token) as client:
        start = await client.post("/hub/api/users/alice/servers/lab")
        stop = await client.delete("/hub/api/users/alice/servers/lab")
        progress = await client.get("/hub/api/users/alice/servers/lab/progress")
    assert start.status_code == stop.status_code == progress.status_code == 403
    assert not [call for call in hub.fake.calls if call[0] in ("start", "stop")]


async def test_too_many_servers_is_the_daemons_409(hub: HubUnderTest) -> None:
    hub.fake.fail["start"] = TooManyServers("alice already runs 2 named servers")
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        response = await client.post("/hub/api/users/alice/servers/three")
    assert response.status_code == 409
    assert "already runs 2 named servers" in response.json()["message"]


async def test_the_path_of_a_running_named_server_reaches_it_with_its_own_token(
    hub: HubUnderTest,
) -> None:
    hub.fake.session_policy = NAMED_ON
    hub.fake.add_session("alice")
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        assert (await client.post("/hub/api/users/alice/servers/lab")).status_code == 201
    async with logged_in(hub, "alice") as browser:
        default = await browser.get("/user/alice/api/status")
        named = await browser.get("/user/alice/lab/api/status")
        # A path whose first segment names no running server is the default server's.
        other = await browser.get("/user/alice/nosuch/api/status")
    assert default.status_code == 200
    assert other.status_code == 200
    tokens = [call[1] for call in hub.fake.calls if call[0] == "token"]
    assert "alice:lab" in tokens  # the named server's own token, not the default's
    assert "/user/alice/lab/api/status" in hub.upstream_seen
    # The fake upstream takes only "token-of-alice" for /user/alice/...: the named server's
    # token was sent there, so it was the named server's route.
    assert named.status_code == 403 and named.json()["message"] == "bad token"


async def test_without_named_servers_a_path_segment_is_the_default_servers(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice")
    async with logged_in(hub, "alice") as browser:
        response = await browser.get("/user/alice/lab/api/status")
    assert response.status_code == 200
    assert not [call for call in hub.fake.calls if call[0] == "get" and ":" in call[1]]


async def test_another_user_may_not_reach_a_named_server_through_the_proxy(
    hub: HubUnderTest,
) -> None:
    hub.fake.session_policy = NAMED_ON
    hub.fake.add_session("alice")
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        await client.post("/hub/api/users/alice/servers/lab")
    async with logged_in(hub, "bob") as browser:
        response = await browser.get("/user/alice/lab/api/status")
    assert response.status_code == 403
    assert "/user/alice/lab/api/status" not in hub.upstream_seen


async def test_the_home_page_lists_starts_and_stops_named_servers(hub: HubUnderTest) -> None:
    hub.fake.session_policy = NAMED_ON
    async with logged_in(hub, "alice") as browser:
        page = await browser.get("/hub/home")
        assert 'id="named-servers"' in page.text
        xsrf = xsrf_of(page.text)
        started = await browser.post(
            "/hub/spawn/alice", data={"_xsrf": xsrf, "server": "lab", "next": "/hub/home"}
        )
        assert started.status_code == 303
        listed = await browser.get("/hub/home")
        assert 'id="server-lab"' in listed.text
        assert 'href="/user/alice/lab/lab"' in listed.text
        refused = await browser.post(
            "/hub/spawn/alice", data={"_xsrf": xsrf, "server": "<b>x</b>", "next": "/hub/home"}
        )
        stopped = await browser.post(
            "/hub/stop/alice", data={"_xsrf": xsrf, "server": "lab", "next": "/hub/home"}
        )
    assert hub.fake.sessions["alice:lab"].state == "stopped"
    assert stopped.status_code == 303
    assert "<b>x</b>" not in refused.text  # escaped, and never started
    assert [call[1] for call in hub.fake.calls if call[0] == "start"] == ["alice"]


async def test_the_home_page_has_no_named_servers_when_they_are_off(hub: HubUnderTest) -> None:
    async with logged_in(hub, "alice") as browser:
        page = await browser.get("/hub/home")
    assert 'id="named-servers"' not in page.text
