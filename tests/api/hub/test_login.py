"""Login and logout through the form: cookies, CSRF, messages, bounds, redirects."""

from __future__ import annotations

import httpx
import pytest

from hostd.api.client import DaemonUnreachable
from hostd.api.hub.forms import FORM_MAX_BYTES
from hostd.api.hub.identity import LOGIN_COOKIE, SESSION_COOKIE
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import PASSWORDS, log_in, xsrf_of
from tests.api.hub.test_security import OPEN_REDIRECTS


def set_cookie(response: httpx.Response, name: str) -> dict[str, str]:
    """The attributes of the Set-Cookie for ``name`` (lower-cased keys; "" for flags)."""
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        key, _, value = first.partition("=")
        if key == name:
            parsed = {"value": value}
            for attribute in attributes:
                attr, _, attr_value = attribute.partition("=")
                parsed[attr.lower()] = attr_value
            return parsed
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers}")


async def test_the_login_page_sets_a_signed_nonce_for_its_form(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        page = await client.get("/hub/login")
    assert page.status_code == 200
    assert 'name="username"' in page.text and 'type="password"' in page.text
    cookie = set_cookie(page, LOGIN_COOKIE)
    assert {"httponly", "path", "samesite"} <= set(cookie) and cookie["samesite"].lower() == "lax"
    assert "secure" not in cookie  # plain HTTP here; see test_tls
    assert xsrf_of(page.text)


async def test_a_right_password_logs_in_with_a_safe_cookie(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        response = await log_in(client, "alice")
        assert response.status_code == 303
        assert response.headers["location"] == "/hub/home"
        cookie = set_cookie(response, SESSION_COOKIE)
        assert cookie["path"] == "/" and "httponly" in cookie
        assert cookie["samesite"].lower() == "lax"
        assert cookie["max-age"] == str(hub.config.cookie_max_age_s)
        assert "secure" not in cookie
        home = await client.get("/hub/home")
    assert home.status_code == 200 and "Log out alice" in home.text
    user = hub.store.user("alice")
    assert user is not None and not user.admin and user.last_login is not None
    assert ("authenticate", "alice") in hub.fake.calls


async def test_admins_come_from_the_daemon(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        await log_in(client, "carol")
        admin = await client.get("/hub/admin")
    assert admin.status_code == 200
    user = hub.store.user("carol")
    assert user is not None and user.admin


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "wrong-password-1"),
        ("nobody", "nobodys-password-2"),
        ("root", "roots-password-3"),
        ("Alice", PASSWORDS["alice"]),
    ],
)
async def test_a_refused_login_shows_a_message_and_sets_no_session(
    hub: HubUnderTest, username: str, password: str
) -> None:
    async with hub.client() as client:
        response = await log_in(client, username, password)
    assert response.status_code == 403
    assert "Invalid user name or password" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert [(e.ok, e.code) for e in hub.store.login_events(username)] == [(False, "login-failed")]
    assert password not in response.text


async def test_a_locked_out_user_is_told_when_to_come_back(hub: HubUnderTest) -> None:
    hub.fake.locked_out["alice"] = 600
    async with hub.client() as client:
        response = await log_in(client, "alice")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "600"
    assert "Try again in 10 minutes" in response.text


async def test_a_daemon_that_does_not_answer_is_a_message_not_a_500(hub: HubUnderTest) -> None:
    hub.fake.fail["authenticate"] = RuntimeError("boom")
    async with hub.client() as client:
        response = await log_in(client, "alice")
    assert response.status_code == 503
    assert "not available" in response.text


BAD_INPUT = [
    ("", "", "Enter a user name and a password"),
    ("alice", "", "Enter a user name and a password"),
    ("a" * 33, "x", "too long"),
    ("a" * 10_000, "x", "too long"),
    ("alice", "x" * 1025, "too long"),
    ("al ice", "x", "Invalid user name or password"),
    ("alice\x00", "x", "Invalid user name or password"),
    ("alice", "pass\x00word", "Invalid user name or password"),
    ("ålice", "x", "Invalid user name or password"),
    ("../etc", "x", "Invalid user name or password"),
]

# Bodies a browser would not send: each is a 400 page with the form again, never a 500.
BAD_BODIES = [
    (b"\xff\xfe\x00binary\x00", "application/x-www-form-urlencoded"),
    (b"username=%ff%fe&password=x", "application/x-www-form-urlencoded"),
    (b"&".join(b"f%d=1" % i for i in range(100)), "application/x-www-form-urlencoded"),
    (b"x" * (FORM_MAX_BYTES + 1), "application/x-www-form-urlencoded"),
    (b'{"username": "alice"}', "application/json"),
    (b"", "application/x-www-form-urlencoded"),
    (b"", ""),
]


async def test_bad_input_is_refused_before_the_daemon_with_a_message(hub: HubUnderTest) -> None:
    for username, password, message in BAD_INPUT:
        async with hub.client() as client:
            response = await log_in(client, username, password)
        assert response.status_code == 400, (username[:40], response.text)
        assert message in response.text
    assert not any(call[0] == "authenticate" for call in hub.fake.calls)


async def test_a_body_that_is_not_a_usable_form_is_refused_with_the_form(
    hub: HubUnderTest,
) -> None:
    for content, content_type in BAD_BODIES:
        async with hub.client() as client:
            await client.get("/hub/login")
            headers = {"content-type": content_type} if content_type else {}
            response = await client.post("/hub/login", content=content, headers=headers)
        # 400: unreadable; 403: readable, but without the form's _xsrf; 413: too big.
        assert response.status_code in (400, 403, 413), (content[:40], response.text)
        assert "<form" in response.text
    assert not any(call[0] == "authenticate" for call in hub.fake.calls)


async def test_a_login_form_needs_its_own_xsrf(hub: HubUnderTest) -> None:
    form = {"username": "alice", "password": PASSWORDS["alice"]}
    async with hub.client() as client:
        no_token = await client.post("/hub/login", data=form)
        page = await client.get("/hub/login")
        async with hub.client() as other:  # another browser's form token
            wrong = await other.post("/hub/login", data={**form, "_xsrf": xsrf_of(page.text)})
    assert no_token.status_code == wrong.status_code == 403
    assert "expired" in no_token.text
    assert not any(call[0] == "authenticate" for call in hub.fake.calls)


async def test_a_login_posted_from_another_site_is_refused(hub: HubUnderTest) -> None:
    async with hub.client(headers={"origin": "http://evil.example"}) as client:
        response = await log_in(client, "alice")
    assert response.status_code == 403


async def test_after_login_every_open_redirect_goes_home_instead(hub: HubUnderTest) -> None:
    for target in OPEN_REDIRECTS:
        async with hub.client() as client:
            page = await client.get("/hub/login", params={"next": target})
            assert page.status_code == 200
            form = {
                "_xsrf": xsrf_of(page.text),
                "username": "alice",
                "password": PASSWORDS["alice"],
                "next": target,
            }
            response = await client.post("/hub/login", data=form)
        assert response.status_code == 303, target
        assert response.headers["location"] == "/hub/home", target


async def test_after_login_a_path_on_the_hub_is_kept(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        response = await log_in(client, "alice", next_url="/user/alice/lab")
    assert response.headers["location"] == "/user/alice/lab"


async def test_the_login_page_of_someone_logged_in_goes_on(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        await log_in(client, "alice")
        response = await client.get("/hub/login", params={"next": "/hub/token"})
    assert (response.status_code, response.headers["location"]) == (302, "/hub/token")


async def test_logout_ends_the_session_for_every_copy_of_the_cookie(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        await log_in(client, "alice")
        stolen = client.cookies[SESSION_COOKIE]
        home = await client.get("/hub/home")
        confirm = await client.get("/hub/logout")
        assert confirm.status_code == 200 and "Log out alice" in confirm.text
        response = await client.post("/hub/logout", data={"_xsrf": xsrf_of(home.text)})
        assert (response.status_code, response.headers["location"]) == (303, "/hub/login")
        assert set_cookie(response, SESSION_COOKIE)["max-age"] == "0"
    async with hub.client(cookies={SESSION_COOKIE: stolen}) as replay:
        assert (await replay.get("/hub/home")).status_code == 302
        assert (await replay.get("/hub/api/user")).status_code == 403


async def test_logout_needs_the_sessions_xsrf(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        await log_in(client, "alice")
        response = await client.post("/hub/logout", data={"_xsrf": "forged"})
        assert response.status_code == 403
        assert (await client.get("/hub/home")).status_code == 200


async def test_a_forged_or_tampered_cookie_is_nobody(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        await log_in(client, "alice")
        good = client.cookies[SESSION_COOKIE]
    session_id, signature = good.split(".")
    for forged in (session_id, f"{session_id}.{signature[::-1]}", f"x{session_id}.{signature}"):
        async with hub.client(cookies={SESSION_COOKIE: forged}) as client:
            assert (await client.get("/hub/home")).status_code == 302


async def test_an_unreachable_daemon_is_told_apart_from_a_wrong_password(
    hub: HubUnderTest,
) -> None:
    hub.fake.fail["authenticate"] = DaemonUnreachable("gone", socket_path="/x")
    async with hub.client() as client:
        response = await log_in(client, "alice")
    assert response.status_code == 503
