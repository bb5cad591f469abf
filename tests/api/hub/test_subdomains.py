"""subdomain_host: each user's server at an origin of its own, <name>.hub.test, with a browser's
cookie rules (httpx's cookie jar, which keeps host-only cookies to their host); every name
reaches the hub on 127.0.0.1. The browser's own proof is the systemd tier's Chromium test."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from hostd.api.hub.identity import SERVER_COOKIE, SESSION_COOKIE
from hostd.api.hub.settings import HubConfig
from hostd.api.hub.subdomains import AuthCodes, Site
from hostd.units.errors import ConfigError
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import log_in

SUBDOMAINS = pytest.mark.parametrize(
    "hub_options", [{"subdomain_host": "http://hub.test:{port}", "admin_access": True}]
)


class ToLoopback(httpx.AsyncBaseTransport):
    """Every host name to the hub on 127.0.0.1 (as a wildcard DNS record would), the Host
    header and the cookie jar keeping the name."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # A copy: the client reads the response's cookies against its request's URL.
        sent = httpx.Request(
            request.method,
            request.url.copy_with(host="127.0.0.1"),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        response = await self.inner.handle_async_request(sent)
        response.request = request
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def origin(hub: HubUnderTest, name: str | None = None) -> str:
    return (
        hub.config.subdomain_host.replace("://", f"://{name}.")
        if name
        else (hub.config.subdomain_host)
    )


@contextlib.asynccontextmanager
async def browser(hub: HubUnderTest, user: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client at the hub's origin (logged in as ``user``, if given)."""
    async with httpx.AsyncClient(
        base_url=origin(hub), transport=ToLoopback(), timeout=10
    ) as client:
        if user is not None:
            answer = await log_in(client, user)
            assert answer.status_code == 303, answer.text
        yield client


async def open_server(client: httpx.AsyncClient, url: str) -> list[httpx.Response]:
    """GET url as a browser's navigation, following redirects; every answer on the way."""
    html = {"accept": "text/html"}
    seen = [await client.get(url, headers=html)]
    while seen[-1].status_code in (302, 303) and len(seen) < 8:
        location = seen[-1].headers["location"]
        seen.append(await client.get(seen[-1].url.join(location), headers=html))
    return seen


@SUBDOMAINS
async def test_a_users_server_is_reached_at_its_own_origin_through_a_one_time_code(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice")
    async with browser(hub, "alice") as client:
        alice = origin(hub, "alice")
        seen = await open_server(client, f"{alice}/user/alice/api/status?x=1")
        steps = [(r.status_code, str(r.request.url).split("?")[0]) for r in seen]
        assert steps == [
            (302, f"{alice}/user/alice/api/status"),
            (302, f"{origin(hub)}/hub/user-auth"),
            (302, f"{alice}/user/alice/oauth_callback"),
            (200, f"{alice}/user/alice/api/status"),
        ]
        echoed = seen[-1].json()
        assert echoed["query"] == "x=1"
        # The hub's cookie never went to alice's origin: host-only, and stripped anyway.
        assert echoed["headers"]["authorization"] == "token token-of-alice"
        assert "cookie" not in echoed["headers"]
        jar = {(cookie.name, cookie.domain) for cookie in client.cookies.jar}
        assert {(SESSION_COOKIE, "hub.test"), (SERVER_COOKIE, "alice.hub.test")} <= jar
        # Host-only: alice's origin holds its own cookie and nothing of the hub's.
        assert {name for name, domain in jar if domain != "hub.test"} == {SERVER_COOKIE}
        # Now in: no more detours.
        again = await client.get(f"{alice}/user/alice/api/status")
        assert again.status_code == 200


@SUBDOMAINS
async def test_the_hubs_origin_sends_user_paths_to_the_users_origin(hub: HubUnderTest) -> None:
    async with browser(hub) as client:
        response = await client.get("/user/alice/lab?reset")
        odd = await client.get("/user/al_ice/lab")
    assert response.status_code == 302
    assert response.headers["location"] == f"{origin(hub, 'alice')}/user/alice/lab?reset"
    assert (odd.status_code, odd.text) == (404, "al_ice's name cannot be a subdomain")


@SUBDOMAINS
async def test_a_users_origin_serves_that_users_server_and_nothing_else(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("bob")
    async with browser(hub, "bob") as client:
        bob = origin(hub, "bob")
        assert (await open_server(client, f"{bob}/user/bob/api/x"))[-1].status_code == 200
        # Another user's path at bob's origin: not proxied (it would carry bob's cookie).
        elsewhere = await client.get(f"{bob}/user/alice/api/x")
        hub_page = await client.get(f"{bob}/hub/home")
    assert elsewhere.status_code == 302
    assert elsewhere.headers["location"] == f"{origin(hub)}/user/alice/api/x"
    assert hub_page.headers["location"] == f"{origin(hub)}/hub/home"
    assert not any(path.startswith("/user/alice/") for path in hub.upstream_seen)


@SUBDOMAINS
async def test_a_code_works_once_at_its_own_origin_only(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    hub.fake.add_session("carol")
    async with browser(hub, "carol") as client:  # carol: an admin, admin_access on
        alice, carol = origin(hub, "alice"), origin(hub, "carol")
        auth = await client.get(
            "/hub/user-auth", params={"next": f"{alice}/user/alice/lab"}, follow_redirects=False
        )
        assert auth.status_code == 302
        callback = urlsplit(auth.headers["location"])
        code = parse_qs(callback.query)["code"][0]
        # At carol's origin, alice's code is nothing.
        stolen = await client.get(f"{carol}/user/carol/oauth_callback", params={"code": code})
        assert stolen.status_code == 403
        # Used (and lost) there: gone at alice's too.
        late = await client.get(f"{alice}/user/alice/oauth_callback", params={"code": code})
        assert late.status_code == 403
        assert (await open_server(client, f"{alice}/user/alice/lab"))[-1].status_code == 200


@SUBDOMAINS
async def test_who_may_not_use_a_server_gets_no_code(hub: HubUnderTest) -> None:
    async with browser(hub, "bob") as client:
        alice = origin(hub, "alice")
        refused = await client.get("/hub/user-auth", params={"next": f"{alice}/user/alice/"})
        elsewhere = await client.get(
            "/hub/user-auth", params={"next": "http://evil.test/user/alice/"}
        )
        wrong_path = await client.get("/hub/user-auth", params={"next": f"{alice}/user/bob/"})
    assert (refused.status_code, refused.text) == (403, "bob may not use alice's server")
    assert elsewhere.status_code == wrong_path.status_code == 400
    async with browser(hub) as stranger:
        to_login = await stranger.get("/hub/user-auth", params={"next": f"{alice}/user/alice/"})
    assert to_login.status_code == 302
    assert to_login.headers["location"].startswith("/hub/login?next=%2Fhub%2Fuser-auth%3F")


@SUBDOMAINS
async def test_an_origins_cookie_is_nothing_at_another_origin_or_after_logout(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice")
    hub.fake.add_session("bob")
    async with browser(hub, "alice") as client:
        alice, bob = origin(hub, "alice"), origin(hub, "bob")
        await open_server(client, f"{alice}/user/alice/")
        cookie = client.cookies.get(SERVER_COOKIE, domain="alice.hub.test")
        assert cookie
        # alice's origin's cookie, carried by hand to bob's origin: not bob's, not alice's.
        async with browser(hub) as other:
            carried = await other.get(
                f"{bob}/user/bob/api/x", headers={"cookie": f"{SERVER_COOKIE}={cookie}"}
            )
        assert carried.status_code == 403
        # Logging out of the hub ends the session the origin's cookie names.
        home = await client.get("/hub/home")
        xsrf = home.text.split('name="_xsrf" value="', 1)[1].split('"', 1)[0]
        assert (await client.post("/hub/logout", data={"_xsrf": xsrf})).status_code in (302, 303)
        after = await client.get(f"{alice}/user/alice/api/x")
    assert after.status_code == 403
    assert not any(path == "/user/bob/api/x" for path in hub.upstream_seen)


@SUBDOMAINS
async def test_a_websocket_at_the_users_origin_needs_that_origins_cookie(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice")
    async with browser(hub, "alice") as client:
        alice = origin(hub, "alice")
        await open_server(client, f"{alice}/user/alice/")
        cookie = client.cookies.get(SERVER_COOKIE, domain="alice.hub.test")
    port = urlsplit(origin(hub)).port
    assert port is not None
    url = f"ws://alice.hub.test:{port}/user/alice/api/kernels/k/channels"

    def to_hub() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port))  # the name's DNS record

    async with connect(
        url,
        sock=to_hub(),
        additional_headers={"cookie": f"{SERVER_COOKIE}={cookie}"},
        origin=websockets.Origin(alice),
    ) as channel:
        first = json.loads(await channel.recv())
        assert first["headers"]["authorization"] == "token token-of-alice"
        assert "cookie" not in first["headers"]  # the origin's cookie is the hub's, kept back
        await channel.send("ping")
        assert await channel.recv() == "echo: ping"
    with pytest.raises(InvalidStatus):
        async with connect(url, sock=to_hub(), origin=websockets.Origin(alice)):
            pass


def test_subdomain_host_is_an_origin() -> None:
    assert HubConfig(subdomain_host="HTTPS://Hub.Example.org/").subdomain_host == (
        "https://hub.example.org"
    )
    assert HubConfig(subdomain_host="http://hub.test:8000").subdomain_host == (
        "http://hub.test:8000"
    )
    assert HubConfig().subdomain_host == ""
    for bad in (
        "hub.example.org",
        "ftp://hub",
        "https://u:p@hub",
        "https://hub/x",
        "https://hub:x",
    ):
        with pytest.raises(ConfigError, match=r"hub\.subdomain_host"):
            HubConfig(subdomain_host=bad)
    site = Site("https://hub.example.org")
    assert site.user_of("Alice.Hub.Example.org") == "alice"
    assert site.user_of("hub.example.org") is None
    assert site.user_of("a.b.hub.example.org") is None
    assert site.server_origin("alice") == "https://alice.hub.example.org"


def test_codes_expire() -> None:
    codes = AuthCodes(ttl_s=0.0)
    code = codes.issue("s1", "https://alice.hub")
    assert codes.redeem(code, "https://alice.hub") is None
    fresh = AuthCodes()
    assert fresh.redeem(fresh.issue("s1", "o"), "o") == "s1"
    assert fresh.redeem(None, "o") is None
