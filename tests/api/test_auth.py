"""POST /v1/auth over a fake service: statuses, codes, Retry-After, and every bad input; and
HostdClient.authenticate."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from hostd.api.client import HostdClient
from hostd.daemon.login import LOGIN_FAILED_MESSAGE
from hostd.units.errors import (
    HostdError,
    InvalidInput,
    InvalidName,
    LockedOut,
    LoginFailed,
    PermissionDenied,
)
from hostd.units.values import PASSWORD_MAX, AuthResult, PeerCredentials
from tests.api.fake import MEMBER, ROOT, STRANGER, FakeSessionService, with_peer

HttpAs = Callable[[PeerCredentials | None], httpx.AsyncClient]


def login(username: Any, password: Any) -> dict[str, Any]:
    return {"username": username, "password": password}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


async def test_the_right_password_answers_the_user_and_admin_flag(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    response = await http.post("/v1/auth", json=login("alice", "wonderland"))
    alice = {"user": "alice", "admin": False, "uid": fake.uid_of("alice")}
    assert (response.status_code, response.json()) == (200, alice)
    response = await http.post("/v1/auth", json=login("carol", "c4r0l"))
    carol = {"user": "carol", "admin": True, "uid": fake.uid_of("carol")}
    assert (response.status_code, response.json()) == (200, carol)


async def test_a_member_of_the_group_may_ask(http_as: HttpAs) -> None:
    async with http_as(MEMBER) as client:
        response = await client.post("/v1/auth", json=login("alice", "wonderland"))
    assert response.status_code == 200


@pytest.mark.parametrize("peer", [None, STRANGER], ids=["no-peer", "stranger"])
async def test_a_peer_that_may_not_use_the_api_is_refused_before_any_check(
    http_as: HttpAs, fake: FakeSessionService, peer: PeerCredentials | None
) -> None:
    async with http_as(peer) as client:
        response = await client.post("/v1/auth", json=login("alice", "wonderland"))
    assert_error(response, 403, "forbidden")
    assert [call[0] for call in fake.calls] == ["authorize"]


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(
    http: httpx.AsyncClient,
) -> None:
    wrong = await http.post("/v1/auth", json=login("alice", "not-it"))
    unknown = await http.post("/v1/auth", json=login("zed", "wonderland"))
    assert assert_error(wrong, 401, "login-failed") == assert_error(unknown, 401, "login-failed")
    assert wrong.json() == {"code": "login-failed", "message": LOGIN_FAILED_MESSAGE}


async def test_a_locked_out_user_gets_429_with_retry_after(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.locked_out["alice"] = 840
    response = await http.post("/v1/auth", json=login("alice", "wonderland"))
    body = assert_error(response, 429, "locked-out")
    assert response.headers["retry-after"] == "840"
    assert body["details"] == {"retry_after_s": 840}


async def test_the_service_never_sees_more_than_the_credentials(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    await http.post("/v1/auth", json=login("alice", "wonderland"))
    assert fake.calls[-1] == ("authenticate", "alice")


async def test_the_bounds_themselves_are_taken(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    name, password = "a" * 32, "p" * PASSWORD_MAX
    fake.passwords[name] = password
    response = await http.post("/v1/auth", json=login(name, password))
    assert response.json() == {"user": name, "admin": False, "uid": fake.uid_of(name)}


async def test_any_text_is_a_password(http: httpx.AsyncClient, fake: FakeSessionService) -> None:
    password = ' "\\ \t\n é 😀 \u2028'
    fake.passwords["alice"] = password
    response = await http.post("/v1/auth", json=login("alice", password))
    assert response.status_code == 200


SECRET = "s3cr3t-Value"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"password": SECRET}, "invalid-name"),
        (login(None, SECRET), "invalid-name"),
        (login(7, SECRET), "invalid-name"),
        (login(["alice"], SECRET), "invalid-name"),
        (login(True, SECRET), "invalid-name"),
        (login("", SECRET), "invalid-name"),
        (login("a" * 33, SECRET), "invalid-name"),
        (login("-alice", SECRET), "invalid-name"),
        (login("al ice", SECRET), "invalid-name"),
        (login("alice\n", SECRET), "invalid-name"),
        (login("alice/..", SECRET), "invalid-name"),
        (login("älice", SECRET), "invalid-name"),
        ({"username": "alice"}, "invalid-input"),
        (login("alice", None), "invalid-input"),
        (login("alice", 12345678), "invalid-input"),
        (login("alice", [SECRET]), "invalid-input"),
        (login("alice", {"p": SECRET}), "invalid-input"),
        (login("alice", True), "invalid-input"),
        (login("alice", ""), "invalid-input"),
        (login("alice", "p" * (PASSWORD_MAX + 1)), "invalid-input"),
        (login("alice", SECRET + "\0" + SECRET), "invalid-input"),
        ({**login("alice", SECRET), "otp": "123456"}, "invalid-option"),
        ({}, "invalid-name"),
    ],
)
async def test_bad_input_is_422_with_a_stable_code_and_never_echoes_the_password(
    http: httpx.AsyncClient, fake: FakeSessionService, body: dict[str, Any], code: str
) -> None:
    response = await http.post("/v1/auth", json=body)
    assert_error(response, 422, code)
    assert SECRET not in response.text
    assert "authenticate" not in [call[0] for call in fake.calls]


async def test_a_lone_surrogate_is_not_a_password(http: httpx.AsyncClient) -> None:
    # Valid JSON, but no UTF-8 can carry it to PAM.
    content = b'{"username": "alice", "password": "ab\\ud800cd"}'
    response = await http.post("/v1/auth", content=content)
    body = assert_error(response, 422, "invalid-input")
    assert "ab" not in body["message"]


@pytest.mark.parametrize("content", [b"", b"[]", b'"alice"', b"{not json", b"null"])
async def test_a_body_that_is_not_an_object_is_400_or_422(
    http: httpx.AsyncClient, content: bytes
) -> None:
    response = await http.post("/v1/auth", content=content)
    # An empty body is an empty object: the user name is missing.
    assert response.status_code == (422 if content == b"" else 400), response.text


async def test_other_methods_are_405(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/auth")
    assert_error(response, 405, "method-not-allowed")


async def test_an_unexpected_failure_is_internal(
    http: httpx.AsyncClient, fake: FakeSessionService, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail["authenticate"] = RuntimeError("boom")
    response = await http.post("/v1/auth", json=login("alice", SECRET))
    assert_error(response, 500, "internal")
    assert SECRET not in caplog.text


# -- the client ------------------------------------------------------------------------------


def client_of(app: Starlette, peer: PeerCredentials | None = ROOT) -> HostdClient:
    return HostdClient(
        "/run/hostd/unused.sock", transport=httpx.ASGITransport(app=with_peer(app, peer))
    )


async def test_the_client_answers_an_auth_result(app: Starlette, fake: FakeSessionService) -> None:
    async with client_of(app) as hostd:
        assert await hostd.authenticate("carol", "c4r0l") == AuthResult(
            user="carol", admin=True, uid=fake.uid_of("carol")
        )


async def test_the_client_raises_each_refusal_as_its_class(
    app: Starlette, fake: FakeSessionService
) -> None:
    fake.locked_out["carol"] = 17
    async with client_of(app) as hostd:
        with pytest.raises(LoginFailed, match=f"^{LOGIN_FAILED_MESSAGE}$"):
            await hostd.authenticate("alice", "nope")
        with pytest.raises(LockedOut) as caught:
            await hostd.authenticate("carol", "c4r0l")
        assert caught.value.retry_after_s == 17
        with pytest.raises(InvalidName):
            await hostd.authenticate("-x", "p")
        with pytest.raises(InvalidInput):
            await hostd.authenticate("alice", "")
    async with client_of(app, peer=None) as hostd:
        with pytest.raises(PermissionDenied):
            await hostd.authenticate("alice", "wonderland")


async def test_the_client_sends_exactly_the_two_fields(app: Starlette) -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"user": "alice", "admin": False})

    async with HostdClient("/unused", transport=httpx.MockTransport(handler)) as hostd:
        assert await hostd.authenticate("alice", "pw") == AuthResult(user="alice", admin=False)
    assert seen == [{"username": "alice", "password": "pw"}]


@pytest.mark.parametrize(
    "body", [{"user": "alice"}, {"user": 1, "admin": False}, {"user": "a", "admin": "no"}, []]
)
async def test_an_answer_the_client_cannot_read_is_a_hostd_error(body: Any) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    async with HostdClient("/unused", transport=transport) as hostd:
        with pytest.raises(HostdError) as caught:
            await hostd.authenticate("alice", "pw")
    assert type(caught.value) is HostdError
