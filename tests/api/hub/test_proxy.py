"""/user/<name>/...: who passes, what reaches the user's server (its token, not the hub's
credentials), streamed bodies, WebSockets both ways, the route cache and activity."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from hostd.api.hub.identity import SESSION_COOKIE
from hostd.units.errors import SystemdUnavailable
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import log_in, xsrf_of

ADMIN_ACCESS = pytest.mark.parametrize("hub_options", [{"admin_access": True}])
# Every test here with the user's server on a Unix socket (the default cmd) and on a port.
pytestmark = pytest.mark.parametrize("upstream_kind", ["socket", "tcp"])


@contextlib.asynccontextmanager
async def logged_in(hub: HubUnderTest, user: str) -> AsyncIterator[httpx.AsyncClient]:
    async with hub.client() as client:
        response = await log_in(client, user)
        assert response.status_code == 303
        yield client


def ws_url(hub: HubUnderTest, path: str) -> str:
    return "ws" + hub.url.removeprefix("http") + path


def cookie_of(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"}


async def test_a_stranger_goes_to_login_for_a_page_and_gets_403_otherwise(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice")
    async with hub.client() as client:
        page = await client.get("/user/alice/lab?reset", headers={"accept": "text/html"})
        api = await client.get("/user/alice/api/contents")
        post = await client.post("/user/alice/api/sessions", headers={"accept": "text/html"})
    assert page.status_code == 302
    assert page.headers["location"] == "/hub/login?next=%2Fuser%2Falice%2Flab%3Freset"
    assert api.status_code == post.status_code == 403
    assert not any(call[0] in ("get", "token") for call in hub.fake.calls)


async def test_the_owner_reaches_the_server_with_its_token_and_without_hub_credentials(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice")
    async with logged_in(hub, "alice") as client:
        client.cookies.set("lab-cookie", "kept")
        response = await client.get(
            "/user/alice/api/contents/a%2Fb%20c.ipynb?content=1", headers={"X-XSRFToken": "lab"}
        )
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["raw_path"] == "/user/alice/api/contents/a%2Fb%20c.ipynb"
    assert seen["query"] == "content=1"
    headers = seen["headers"]
    assert headers["authorization"] == "token token-of-alice"
    assert headers["cookie"] == "lab-cookie=kept"  # the hub's session cookie stays here
    assert headers["x-xsrftoken"] == "lab"  # JupyterLab's own, passed on
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == hub.url.removeprefix("http://")
    assert "origin" not in headers


async def test_a_hub_api_token_opens_the_server_and_is_swapped_for_the_servers(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice")
    hub.store.record_login("alice", ok=True)
    token, _ = hub.make_token("alice")
    async with hub.client(headers={"Authorization": f"token {token}"}) as client:
        response = await client.post("/user/alice/api/kernels", json={})
    assert response.status_code == 200
    assert response.json()["headers"]["authorization"] == "token token-of-alice"


async def test_jupyterlabs_own_token_header_does_not_hide_the_cookie(hub: HubUnderTest) -> None:
    # JupyterLab sends "Authorization: token <its server's token>" from its page config.
    hub.fake.add_session("alice")
    async with logged_in(hub, "alice") as client:
        client.headers["Authorization"] = "token leaked-or-stale-server-token"
        read = await client.get("/user/alice/api/contents")
        write = await client.post(
            "/user/alice/api/kernels", json={}, headers={"origin": "http://evil.example"}
        )
        api = await client.post("/hub/api/users/alice/server")
    assert read.status_code == 200
    assert read.json()["headers"]["authorization"] == "token token-of-alice"
    # Still a cookie request: the same-site and CSRF checks apply.
    assert write.status_code == api.status_code == 403


async def test_bodies_stream_both_ways(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    body = os.urandom(5 * 1024 * 1024)

    async def chunks() -> Any:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    async with logged_in(hub, "alice") as client:
        upload = await client.put("/user/alice/api/contents/big.bin", content=chunks())
        sized = await client.put("/user/alice/api/contents/big.bin", content=body)
        async with client.stream("GET", "/user/alice/stream?n=50") as download:
            lines = [line async for line in download.aiter_lines()]
    for response in (upload, sized):
        assert response.status_code == 200
        assert response.json()["body_length"] == len(body)
        assert response.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert lines == [f"chunk {i}" for i in range(50)]


async def test_redirects_stay_on_the_hub_and_its_cookies_stay_its_own(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    async with logged_in(hub, "alice") as client:
        session = client.cookies[SESSION_COOKIE]
        redirect = await client.get("/user/alice/redirect")
        cookies = await client.get("/user/alice/cookies")
        assert client.cookies[SESSION_COOKIE] == session
    assert redirect.status_code == 302
    assert redirect.headers["location"] == "/user/alice/lab"
    set_cookies = cookies.headers.get_list("set-cookie")
    assert len(set_cookies) == 1 and set_cookies[0].startswith("lab-cookie=kept")


async def test_a_users_server_cannot_toss_the_hubs_cookie_in_without_a_name(
    hub: HubUnderTest,
) -> None:
    # The attacker is alice's own server: it answers with Set-Cookie headers whose name is
    # empty, so that a browser sends their value back as the hub's session cookie.
    hub.fake.add_session("alice")
    async with logged_in(hub, "alice") as client:
        tossed = await client.get("/user/alice/nameless-cookies")
    assert tossed.status_code == 200
    assert tossed.headers.get_list("set-cookie") == ["lab-cookie=kept; Path=/; SameSite=lax"]


async def test_another_user_gets_403_and_so_does_an_admin_without_admin_access(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice")
    for user in ("bob", "carol"):
        async with logged_in(hub, user) as client:
            for method in ("GET", "POST", "DELETE"):
                response = await client.request(
                    method, "/user/alice/api/contents", headers={"accept": "text/html"}
                )
                assert response.status_code == 403, (user, method)
    assert not any(call[0] == "token" for call in hub.fake.calls)


@ADMIN_ACCESS
async def test_with_admin_access_an_admin_may_open_a_users_server(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    async with logged_in(hub, "carol") as admin, logged_in(hub, "bob") as bob:
        response = await admin.get("/user/alice/api/status")
        refused = await bob.get("/user/alice/api/status")
    assert response.status_code == 200
    assert response.json()["headers"]["authorization"] == "token token-of-alice"
    assert refused.status_code == 403


async def test_a_server_that_is_not_running_is_424_or_a_page_to_start_it(
    hub: HubUnderTest,
) -> None:
    async with logged_in(hub, "alice") as client:
        api = await client.get("/user/alice/api/kernels")
        page = await client.get("/user/alice/lab", headers={"accept": "text/html"})
        hub.fake.start_delay_s = 5
        hub.fake.sessions.clear()
        await client.post(
            "/hub/api/users/alice/server",
            headers={"X-XSRFToken": xsrf_of(page.text)},
        )
        starting = await client.get("/user/alice/lab", headers={"accept": "text/html"})
    assert api.status_code == 424 and api.json()["status"] == 424
    assert page.status_code == 424 and "Your server is not running" in page.text
    assert 'action="/hub/spawn/alice"' in page.text
    assert 'name="next" value="/user/alice/lab"' in page.text
    assert starting.status_code == 302
    assert starting.headers["location"] == "/hub/home?next=%2Fuser%2Falice%2Flab"


async def test_a_change_sent_from_another_site_is_refused(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    async with logged_in(hub, "alice") as client:
        cross = await client.post(
            "/user/alice/api/kernels", headers={"origin": "http://evil.example"}, json={}
        )
        fetch = await client.delete(
            "/user/alice/api/kernels/k", headers={"sec-fetch-site": "cross-site"}
        )
        same = await client.post(
            "/user/alice/api/kernels",
            headers={"origin": hub.url, "sec-fetch-site": "same-origin"},
            json={},
        )
        read = await client.get("/user/alice/api/kernels", headers={"sec-fetch-site": "cross-site"})
    assert cross.status_code == fetch.status_code == 403
    assert same.status_code == read.status_code == 200


async def raw_request(hub: HubUnderTest, request: bytes) -> bytes:
    """One request as typed, byte for byte (httpx would upper-case the method)."""
    url = httpx.URL(hub.url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(request)
        await writer.drain()
        return await reader.read(65536)
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("method", ["post", "Post", "pUT", "delete", "patch", "PROPFIND"])
async def test_a_change_from_another_site_is_refused_whatever_the_methods_case(
    hub: HubUnderTest, method: str
) -> None:
    # tornado (jupyter_server) serves "post" as POST: a method in another case, or one the
    # hub does not know, must not slip past the cross-site check. The hub's server parses
    # with llhttp (httptools), which refuses a known method in another case outright (400,
    # before the app); one it does not know the case of (PROPFIND) reaches the check (403).
    hub.fake.add_session("alice")
    async with logged_in(hub, "alice") as client:
        cookie = client.cookies[SESSION_COOKIE]
    answer = await raw_request(
        hub,
        f"{method} /user/alice/api/kernels HTTP/1.1\r\nHost: {httpx.URL(hub.url).netloc.decode()}"
        f"\r\nOrigin: http://evil.example\r\nCookie: {SESSION_COOKIE}={cookie}\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n".encode(),
    )
    refused = b"HTTP/1.1 403 " if method.isupper() else b"HTTP/1.1 400 "
    assert answer.startswith(refused), answer[:200]
    assert hub.upstream_seen == []


async def test_paths_without_a_server_or_with_a_bad_name(hub: HubUnderTest) -> None:
    async with logged_in(hub, "alice") as client:
        bare = await client.get("/user/alice?x=1")
        for path in ["/user/", "/user//lab", "/user/a%2Fb/lab", "/user/%ff/", "/user/no%20one/"]:
            assert (await client.get(path)).status_code == 404, path
    assert (bare.status_code, bare.headers["location"]) == (302, "/user/alice/?x=1")


async def test_the_route_is_cached_and_activity_reported_at_most_once_a_interval(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice")
    async with logged_in(hub, "alice") as client:
        before = len(hub.fake.calls)
        for _ in range(20):
            assert (await client.get("/user/alice/api/status")).status_code == 200
        calls = [call[0] for call in hub.fake.calls[before:]]
    assert calls.count("get") == 1 and calls.count("token") == 1
    assert calls.count("activity") == 1
    user = hub.store.user("alice")
    assert user is not None and user.last_activity is not None


async def test_an_upstream_that_is_gone_is_a_502_and_the_route_is_asked_again(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice", url="http://127.0.0.1:9/user/alice/")  # nothing listens
    async with logged_in(hub, "alice") as client:
        first = await client.get("/user/alice/api/status")
        hub.fake.add_session("alice")  # the server is back, elsewhere
        second = await client.get("/user/alice/api/status")
    assert first.status_code == 502
    assert second.status_code == 200


@pytest.mark.parametrize("server_owner", [lambda user: 4242])
async def test_a_server_owned_by_another_account_gets_nothing(hub: HubUnderTest) -> None:
    # The user's port was taken by someone else's process: not one byte goes there, over
    # HTTP or WebSocket (the token would go with it).
    hub.fake.add_session("alice")
    async with logged_in(hub, "alice") as client:
        response = await client.get("/user/alice/api/status")
        status = await _refused(hub, "/user/alice/api/x", additional_headers=cookie_of(client))
    assert response.status_code == 502
    assert status == 403
    assert hub.upstream_seen == []


@pytest.mark.parametrize("server_owner", [lambda user: 4242 if user == "alice" else os.getuid()])
async def test_a_route_is_checked_against_its_own_user_not_whoever_last_had_the_port(
    hub: HubUnderTest,
) -> None:
    # Issue 13's route/peer confusion. bob's route and alice's (stale: her session ended and
    # the daemon gave the port to bob) name the same port, where bob's server listens. Before
    # the fix the peer check asked "whose route last claimed this port?" (bob's) and a
    # connection checked for bob's request was pooled and reused for alice's: her request,
    # her session token and her cookies went to bob's server (200). Now each connection is
    # checked against the uid of the route it serves: alice's request gets nothing through.
    hub.fake.add_session("alice")
    hub.fake.add_session("bob")  # the same upstream: the same port
    async with logged_in(hub, "bob") as bob, logged_in(hub, "alice") as alice:
        assert (await bob.get("/user/bob/api/status")).status_code == 200  # kept alive
        response = await alice.get("/user/alice/api/status")
        status = await _refused(hub, "/user/alice/api/x", additional_headers=cookie_of(alice))
        assert (await bob.get("/user/bob/api/status")).status_code == 200  # bob is unharmed
    assert response.status_code == 502
    assert status == 403
    assert not any(path.startswith("/user/alice/") for path in hub.upstream_seen)


# -- WebSocket -----------------------------------------------------------------------------


async def test_a_websocket_goes_both_ways_with_the_token_added(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    async with logged_in(hub, "alice") as client:
        headers = {**cookie_of(client), "Cookie": cookie_of(client)["Cookie"] + "; lab=1"}
        async with connect(
            ws_url(hub, "/user/alice/api/kernels/k1/channels?session_id=s"),
            additional_headers=headers,
            origin=websockets.Origin(hub.url),
            subprotocols=[websockets.Subprotocol("v1.kernel.websocket.jupyter.org")],
        ) as socket:
            hello = json.loads(await socket.recv())
            assert socket.subprotocol == "v1.kernel.websocket.jupyter.org"
            await socket.send("print(6*7)")
            assert await socket.recv() == "echo: print(6*7)"
            await socket.send(b"\x00\x01binary")
            assert await socket.recv() == b"echo: \x00\x01binary"
            await socket.send("close-4001")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
    assert hello["path"] == "/user/alice/api/kernels/k1/channels"
    assert hello["headers"]["authorization"] == "token token-of-alice"
    assert hello["headers"]["cookie"] == "lab=1"
    assert "origin" not in hello["headers"]


async def _refused(hub: HubUnderTest, path: str, **options: Any) -> int:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(ws_url(hub, path), **options):
            pass
    return refused.value.response.status_code


async def test_a_websocket_is_refused_before_it_opens_for_anyone_but_the_owner(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice")
    path = "/user/alice/api/kernels/k1/channels"
    assert await _refused(hub, path) == 403
    for user in ("bob", "carol"):
        async with logged_in(hub, user) as client:
            assert await _refused(hub, path, additional_headers=cookie_of(client)) == 403
    async with logged_in(hub, "alice") as client:
        evil = websockets.Origin("http://evil.example")
        assert await _refused(hub, path, additional_headers=cookie_of(client), origin=evil) == 403
        assert await _refused(hub, "/user/alice", additional_headers=cookie_of(client)) == 403


@ADMIN_ACCESS
async def test_with_admin_access_an_admin_may_open_a_websocket(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    async with (
        logged_in(hub, "carol") as admin,
        connect(
            ws_url(hub, "/user/alice/terminals/websocket/1"), additional_headers=cookie_of(admin)
        ) as socket,
    ):
        hello = json.loads(await socket.recv())
    assert hello["headers"]["authorization"] == "token token-of-alice"


async def test_a_websocket_to_a_stopped_server_is_refused(hub: HubUnderTest) -> None:
    async with logged_in(hub, "alice") as client:
        assert await _refused(hub, "/user/alice/api/x", additional_headers=cookie_of(client)) == 403


async def test_a_websocket_ends_when_the_server_goes_away(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice", url="http://127.0.0.1:9/user/alice/")
    async with logged_in(hub, "alice") as client:
        assert await _refused(hub, "/user/alice/api/x", additional_headers=cookie_of(client)) == 403


async def test_a_cookie_one_users_server_sets_never_reaches_another_users_server(
    hub: HubUnderTest,
) -> None:
    # The proxy's upstream client is shared by every user: a cookie jar in it would keep what
    # alice's server set (jupyter_server's login cookie among them) and send it to bob's
    # server with bob's next request that carries no cookie of its own (an API token's).
    tokens = {}
    for user in ("alice", "bob"):
        hub.fake.add_session(user)
        hub.store.record_login(user, ok=True)
        tokens[user], _ = hub.make_token(user)
    async with hub.client(headers={"Authorization": f"token {tokens['alice']}"}) as alice:
        planted = await alice.get("/user/alice/cookies")
        assert planted.status_code == 200
        assert "lab-cookie=kept" in planted.headers.get("set-cookie", "")
    async with hub.client(headers={"Authorization": f"token {tokens['bob']}"}) as bob:
        response = await bob.get("/user/bob/api/contents")
    assert response.status_code == 200
    assert "cookie" not in response.json()["headers"]


async def test_another_users_server_is_a_page_for_a_browser_and_json_for_a_client(
    hub: HubUnderTest,
) -> None:
    """Issue 16: bob's Lab, asked for by alice's browser, was a bare JSON 403. A browser asking
    for a page gets the hub's page with the reason and what to do; any other client keeps
    JupyterHub's JSON body."""
    hub.fake.add_session("bob")
    async with logged_in(hub, "alice") as client:
        page = await client.get("/user/bob/lab", headers={"accept": "text/html,*/*"})
        api = await client.get("/user/bob/api/contents")
        api_html = await client.post("/user/bob/api/sessions", headers={"accept": "text/html"})
        nobody = await client.get("/user/no%20one/lab", headers={"accept": "text/html"})
        nobody_api = await client.get("/user/no%20one/api")
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "<h1>This is not your server</h1>" in page.text
    assert "You are signed in as alice; bob&#39;s server is bob&#39;s alone." in page.text
    assert 'href="/user/alice/lab"' in page.text and 'href="/hub/logout"' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert api.status_code == api_html.status_code == 403
    assert api.json() == {"status": 403, "message": "alice may not use bob's server"}
    assert api_html.json() == api.json()  # a POST is never a page
    assert nobody.status_code == 404 and "<h1>No such server</h1>" in nobody.text
    assert nobody_api.json() == {"status": 404, "message": "no such server"}
    assert not any(call[0] in ("get", "token") and call[1] == "bob" for call in hub.fake.calls)


async def test_a_server_that_does_not_answer_is_a_page_for_a_browser(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice", url="http://127.0.0.1:9/user/alice/")  # nothing listens
    async with logged_in(hub, "alice") as client:
        page = await client.get("/user/alice/lab", headers={"accept": "text/html"})
        api = await client.get("/user/alice/api/status")
    assert page.status_code == 502 and "<h1>The server did not answer</h1>" in page.text
    assert api.status_code == 502
    assert api.json() == {"status": 502, "message": "alice's server did not answer; try again"}


async def test_the_daemon_out_of_reach_is_a_page_for_a_browser(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    async with logged_in(hub, "alice") as client:
        hub.fake.fail["get"] = SystemdUnavailable("systemd is restarting")
        page = await client.get("/user/alice/lab", headers={"accept": "text/html"})
        api = await client.get("/user/alice/api/status")
    assert page.status_code == 503 and "<h1>Try again in a moment</h1>" in page.text
    assert api.json() == {
        "status": 503,
        "message": "the hub cannot reach hostd just now; try again",
    }


async def test_jupyterlabs_log_out_is_the_hubs(hub: HubUnderTest) -> None:
    """JupyterLab's File > Log Out opens <server>/logout: the hub's logout page, for the
    owner's browser; another user's, or a script's, goes on as before."""
    hub.fake.add_session("alice")
    async with logged_in(hub, "alice") as client:
        page = await client.get("/user/alice/logout", headers={"accept": "text/html"})
        api = await client.get("/user/alice/logout")
    assert (page.status_code, page.headers["location"]) == (302, "/hub/logout")
    assert api.status_code != 302
