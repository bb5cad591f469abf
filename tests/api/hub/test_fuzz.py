"""The hub under bad input: generated (hypothesis) and hand-picked huge, binary, broken,
unicode-confusable and empty inputs to the login form, the JSON API and /user/<name>/.

Whatever comes in, the answer is never a 5xx, is small and quick, and says what was wrong
(a page with a message for forms and pages, JupyterHub's ``{"status", "message"}`` for the
API), and a name that only looks like another user's (``аlice`` with a Cyrillic а,
fullwidth, zero-width joiners, ``..``, ``%2e%2e``, NUL) never reaches that user's server:
the daemon is never even asked about them.

The hub is the real app over the fake daemon (conftest.py); one hub serves every example of
a test (hypothesis' function-scoped-fixture check is off on purpose: the examples share it).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any, Final
from urllib.parse import quote, unquote, urlencode

import httpcore
import httpx
import pytest
import websockets
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from hostd.api.hub.forms import FORM_MAX_BYTES, JSON_MAX_BYTES
from hostd.api.hub.identity import SESSION_COOKIE
from hostd.api.hub.security import DEFAULT_NEXT, safe_next
from hostd.units import validate_username
from hostd.units.errors import InvalidName
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import PASSWORDS, log_in, xsrf_of

# One hub per test, shared by its examples; no example database (runs are reproducible from
# the seed hypothesis prints on a failure).
EXAMPLES: Final = 100
SHARED_HUB: Final = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

RESPONSE_MAX_BYTES: Final = 64 * 1024  # the largest error page is a few KB
RESPONSE_MAX_S: Final = 5.0  # on a loaded 2-core machine; each takes milliseconds
HUGE: Final = 10 * 1024 * 1024
FORM: Final = "application/x-www-form-urlencoded"

# "alice" as it may be made to look: each is someone else, or no one, never alice.
CONFUSABLES: Final = [
    "\u0430lice",  # Cyrillic а
    "al\u0456ce",  # Cyrillic і
    "alic\u0435",  # Cyrillic е
    "\uff41\uff4c\uff49\uff43\uff45",  # fullwidth
    "al\u200bice",  # zero-width space
    "alice\u200d",  # zero-width joiner
    "\ufeffalice",  # byte-order mark
    "ali\u0307ce",  # combining dot
    "al\u0131ce",  # dotless ı
    "ALICE",
    "Alice",
    "alice ",
    " alice",
    "alice\x00",
    "alice\n",
    "alice/",
    "alice%00",
    "%61lice",  # percent-encoded a: the server decodes it to alice (see names_of)
    "%2e%2e",
    "%2E%2E",
    "..",
    ".",
    "...",
    "alice/..",
    "../alice",
    "bob/../alice",
    "alice;bob",
    "alice?x=1",
    "alice#x",
    "a" * 33,
    "a" * 5000,
    "",
]
# What a page that echoes its input must escape.
INJECTIONS: Final = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
]

_ERROR: Final = re.compile(r'<p class="error"[^>]*>([^<]+)</p>')


def _mutated(base: str) -> st.SearchStrategy[str]:
    """``base`` with one character inserted, replaced or doubled: near-misses of a name."""

    def mutate(position: int, char: str, how: str) -> str:
        position %= len(base) + 1
        if how == "insert":
            return base[:position] + char + base[position:]
        if how == "replace":
            return base[:position] + char + base[position + 1 :]
        return base[:position] + base[position:] * 2

    return st.builds(
        mutate,
        st.integers(min_value=0, max_value=len(base)),
        st.characters(),
        st.sampled_from(["insert", "replace", "double"]),
    )


NAMES: Final = st.one_of(
    st.sampled_from(CONFUSABLES),
    _mutated("alice"),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="ascii"), max_size=40),
    st.sampled_from(["alice", "bob", "carol"]),  # the right names now and then
)
FIELDS: Final = st.one_of(
    st.text(max_size=80),
    st.sampled_from([*CONFUSABLES, *INJECTIONS, "x" * 20_000, "\x00", "\ud7ff\ue000\uffff"]),
)


# -- checks every answer must pass ---------------------------------------------------------


async def timed(call: Callable[[], Any]) -> httpx.Response:
    started = time.monotonic()
    response: httpx.Response = await call()
    took = time.monotonic() - started
    assert took < RESPONSE_MAX_S, f"took {took:.1f} s"
    assert response.status_code < 500, response.text[:500]
    assert len(response.content) <= RESPONSE_MAX_BYTES, len(response.content)
    return response


def page_message(response: httpx.Response) -> str:
    """An HTML error page's message (the login form's, or error.html's)."""
    assert response.headers["content-type"].startswith("text/html"), response.headers
    match = _ERROR.search(response.text)
    assert match is not None and match[1].strip(), response.text[:2000]
    return match[1]


def api_message(response: httpx.Response) -> str:
    """JupyterHub's error body: {"status": <the status>, "message": <for people>}."""
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    assert set(body) == {"status", "message"}, body
    assert body["status"] == response.status_code
    assert isinstance(body["message"], str) and body["message"], body
    return body["message"]


def user_calls(hub: HubUnderTest, since: int, *, actor: str | None = None) -> list[str]:
    """The user names the daemon was asked about since call ``since`` (not the re-check of
    ``actor``'s own account, which every request of the actor's makes now and then)."""
    return [
        call[1]
        for call in hub.fake.calls[since:]
        if len(call) > 1
        and isinstance(call[1], str)
        and call[0] != "authenticate"
        and call[:2] != ("account", actor)
    ]


def valid(name: str) -> bool:
    try:
        validate_username(name)
    except InvalidName:
        return False
    return True


def segment(name: str, how: str) -> str:
    """``name`` as one path segment: percent-encoded wholly (dots too, so that no client
    folds ``..``), as a browser would (``quote``), or raw, bytes as they are but for what
    HTTP itself forbids in a request line."""
    if how == "all":
        return "".join(f"%{byte:02X}" for byte in name.encode())
    if how == "quote":
        return quote(name, safe="")
    return quote(name, safe="/%.;:@!$&'()*+,=-_~")


async def send_raw(
    hub: HubUnderTest, method: str, target: str, headers: dict[str, str]
) -> httpx.Response:
    """``target`` goes out byte for byte in the request line: httpx folds ``..`` in any URL
    it is given, httpcore (under it) takes the target as it is."""
    url = httpx.URL(hub.url)
    sent: dict[str, str] = {"host": url.netloc.decode(), **headers}
    async with httpcore.AsyncConnectionPool() as pool:
        raw = await pool.request(
            method,
            httpcore.URL(scheme=b"http", host=url.host, port=url.port, target=target),
            headers=list(sent.items()),
        )
    return httpx.Response(raw.status, headers=raw.headers, content=raw.content)


# -- the login form ------------------------------------------------------------------------


@SHARED_HUB
@given(
    credentials=st.one_of(
        st.tuples(
            st.one_of(FIELDS, NAMES, st.sampled_from(INJECTIONS)),
            st.one_of(FIELDS, st.sampled_from(sorted(PASSWORDS.values()))),
        ),
        st.sampled_from(sorted(PASSWORDS.items())),  # right ones now and then
    ),
    next_url=st.one_of(st.none(), FIELDS, st.sampled_from(["/hub/token", "/user/alice/lab"])),
    xsrf=st.one_of(st.just("the form's"), st.none(), FIELDS),
)
async def test_login_fields_of_any_kind(
    hub: HubUnderTest, credentials: tuple[str, str], next_url: str | None, xsrf: str | None
) -> None:
    username, password = credentials
    async with hub.client() as client:
        page = await timed(lambda: client.get("/hub/login"))
        form = {"username": username, "password": password}
        if next_url is not None:
            form["next"] = next_url
        if xsrf is not None:
            form["_xsrf"] = xsrf_of(page.text) if xsrf == "the form's" else xsrf
        since = len(hub.fake.calls)
        response = await timed(lambda: client.post("/hub/login", data=form))
    event(f"status {response.status_code}")
    right = (
        xsrf == "the form's"
        and username.strip() in PASSWORDS
        and password == PASSWORDS[username.strip()]
    )
    if len(urlencode(form)) > FORM_MAX_BYTES:
        assert response.status_code == 413
        assert "too big" in page_message(response)
    elif right:
        assert response.status_code == 303
        assert response.headers["location"] == (safe_next(next_url) or DEFAULT_NEXT)
        assert SESSION_COOKIE in response.headers["set-cookie"]
    else:
        assert response.status_code in (400, 403), response.text[:300]
        assert page_message(response)
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    # Only a valid name ever reaches the daemon, and the password is nowhere on the page.
    asked = [call[1] for call in hub.fake.calls[since:] if call[0] == "authenticate"]
    assert all(valid(name) for name in asked), asked
    if len(password) >= 10 and password not in username and response.status_code != 303:
        assert password not in response.text
    for field in (username[:64], next_url or ""):
        if len(field) >= 8 and any(char in field for char in '<>"'):
            assert field not in response.text  # echoed, but escaped


BAD_BODIES: Final = st.one_of(
    st.binary(max_size=4096),
    st.binary(max_size=64).map(lambda raw: b"username=" + raw + b"&password=x&_xsrf=y"),
    st.sampled_from(
        [
            b"",
            b"\xff\xfe\xfd",
            b"username=%ff%fe&password=%c3%28",
            b"username=\xc3\x28&password=x",
            b"%" * 100,
            b"=&=&=&",
            b"&".join(b"f%d=1" % i for i in range(1000)),
            b"username=" + b"a" * (FORM_MAX_BYTES + 1),
            b'{"username": "alice", "password": "wonderland"}',
            b"\x00" * 1000,
        ]
    ),
)
CONTENT_TYPES: Final = st.sampled_from(
    [
        None,
        "",
        FORM,
        FORM + "; charset=utf-8",
        FORM + "; charset=latin-1",
        "APPLICATION/X-WWW-FORM-URLENCODED",
        "multipart/form-data; boundary=x",
        "application/json",
        "text/plain",
        "image/png",
        "nonsense",
        "application/json; charset=ebcdic",
    ]
)


@SHARED_HUB
@given(body=BAD_BODIES, content_type=CONTENT_TYPES, with_token=st.booleans())
async def test_login_bodies_of_any_kind(
    hub: HubUnderTest, body: bytes, content_type: str | None, with_token: bool
) -> None:
    async with hub.client() as client:
        page = await timed(lambda: client.get("/hub/login"))
        if with_token:  # a right _xsrf first: what follows is read, not refused unread
            body = f"_xsrf={xsrf_of(page.text)}&".encode() + body
        headers = {} if content_type is None else {"content-type": content_type}
        since = len(hub.fake.calls)
        response = await timed(lambda: client.post("/hub/login", content=body, headers=headers))
    event(f"status {response.status_code}")
    assert response.status_code in (400, 403, 413), response.text[:300]
    assert page_message(response)
    assert "<form" in response.text  # the form again, to try once more
    # Only a readable form with its token and a valid name is a login attempt.
    asked = [call[1] for call in hub.fake.calls[since:] if call[0] == "authenticate"]
    assert all(valid(name) for name in asked) and (with_token or not asked), asked


async def _chunks(total: int, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


async def test_a_huge_body_is_413_at_once_with_or_without_a_length(hub: HubUnderTest) -> None:
    token, _ = hub.make_token("alice")
    hub.store.record_login("alice", ok=True)
    async with hub.client() as browser, hub.client() as anonymous:
        await log_in(browser, "alice")
        xsrf = xsrf_of((await browser.get("/hub/home")).text)
        api = {"Authorization": f"token {token}"}
        cases: list[tuple[httpx.AsyncClient, str, dict[str, str], str]] = [
            (anonymous, "/hub/login", {"content-type": FORM}, "page"),
            (browser, "/hub/logout", {"content-type": FORM}, "page"),
            (browser, "/hub/spawn/alice", {"content-type": FORM}, "page"),
            (browser, "/hub/stop/alice", {"content-type": FORM}, "page"),
            (browser, "/hub/token", {"content-type": FORM}, "page"),
            (anonymous, "/hub/api/users/alice/server", api, "api"),
            (anonymous, "/hub/api/users/alice/tokens", api, "api"),
            (browser, "/hub/api/users/alice/tokens", {"X-XSRFToken": xsrf}, "api"),
        ]
        for client, path, headers, kind in cases:
            for content in (b"x" * HUGE, _chunks(HUGE)):  # Content-Length, then chunked
                response = await timed(partial(client.post, path, content=content, headers=headers))
                assert response.status_code == 413, (path, response.text[:300])
                message = page_message(response) if kind == "page" else api_message(response)
                assert "too big" in message
        # Just over the limits is over; a body a route never reads is never read.
        over = await timed(
            lambda: anonymous.post(
                "/hub/api/users/alice/tokens", content=b" " * (JSON_MAX_BYTES + 1), headers=api
            )
        )
        assert over.status_code == 413
        home = await timed(lambda: browser.request("GET", "/hub/home", content=b"x" * HUGE))
        assert home.status_code == 200
        assert (await browser.get("/hub/home")).status_code == 200  # still logged in
    assert not any(call[0] in ("start", "stop") for call in hub.fake.calls)
    assert [row.note for row in hub.store.tokens("alice")] == [None]


# Any bytes HTTP allows in a header value (h11 refuses to send the others).
HEADER_VALUES: Final = st.binary(max_size=300).map(
    lambda raw: bytes(byte for byte in raw if byte >= 0x20 and byte != 0x7F).strip(b" ")
)


@SHARED_HUB
@given(
    cookie=HEADER_VALUES,
    authorization=st.one_of(
        HEADER_VALUES, HEADER_VALUES.map(lambda raw: (b"token " + raw).strip())
    ),
    path=st.sampled_from(["/hub/home", "/hub/api/user", "/user/alice/api/status", "/hub/login"]),
)
async def test_garbage_cookies_and_authorization_are_nobody(
    hub: HubUnderTest, cookie: bytes, authorization: bytes, path: str
) -> None:
    headers = {
        b"cookie": SESSION_COOKIE.encode() + b"=" + cookie,
        b"authorization": authorization,
        b"accept": b"text/html",
    }
    async with hub.client() as client:
        response = await timed(lambda: client.get(path, headers=headers))
    event(f"status {response.status_code}")
    assert response.status_code in (200, 302, 403), response.text[:300]
    if response.status_code == 200:
        assert path == "/hub/login"
    if path.startswith("/hub/api") and response.status_code == 403:
        api_message(response)


# -- the JSON API --------------------------------------------------------------------------

API_CALLS: Final = [
    ("GET", "/hub/api/users/{}"),
    ("POST", "/hub/api/users/{}/server"),
    ("DELETE", "/hub/api/users/{}/server"),
    ("GET", "/hub/api/users/{}/server/progress"),
    ("GET", "/hub/api/users/{}/tokens"),
    ("POST", "/hub/api/users/{}/tokens"),
    ("DELETE", "/hub/api/users/{}/tokens/999999"),
]


@pytest.fixture
async def tokens(hub: HubUnderTest) -> dict[str, str]:
    """An API token of alice (a user) and of carol (an admin)."""
    made = {}
    for user in ("alice", "carol"):
        hub.store.record_login(user, ok=True, admin=user in hub.fake.admins)
        made[user], _ = hub.make_token(user)
    return made


@SHARED_HUB
@given(
    name=NAMES,
    how=st.sampled_from(["all", "quote", "raw"]),
    call=st.sampled_from(API_CALLS),
    actor=st.sampled_from(["alice", "carol"]),
)
async def test_api_user_names_of_any_kind(
    hub: HubUnderTest,
    tokens: dict[str, str],
    name: str,
    how: str,
    call: tuple[str, str],
    actor: str,
) -> None:
    method, template = call
    encoded = segment(name, how)
    path = template.format(encoded)
    seen_by_server = unquote(encoded)  # what the route's {name} holds, when it matches
    since = len(hub.fake.calls)
    headers = {"Authorization": f"token {tokens[actor]}"}
    response = await timed(lambda: send_raw(hub, method, path, headers))
    event(f"status {response.status_code}")
    if response.status_code >= 400:
        api_message(response)
    asked = user_calls(hub, since, actor=actor)
    # Only the exact name in the path, and only a valid one, ever reaches the daemon.
    assert set(asked) <= ({seen_by_server} if valid(seen_by_server) else set()), asked
    if response.is_redirect:  # Starlette's trailing-slash redirect: to the same hub
        assert response.status_code == 307
        location = httpx.URL(response.headers["location"])
        assert location.netloc.decode() in ("", httpx.URL(hub.url).netloc.decode())
        assert location.path.startswith("/hub/api/")
    elif seen_by_server != actor and actor != "carol":
        assert response.status_code in (403, 404, 405), response.text[:300]
        assert asked == []
    if response.status_code < 300:
        assert valid(seen_by_server) and (actor == "carol" or seen_by_server == actor)


@SHARED_HUB
@given(
    body=st.one_of(
        st.binary(max_size=2048),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
            lambda inner: (
                st.lists(inner, max_size=5)
                | st.dictionaries(st.sampled_from(["note", "x", ""]), inner, max_size=3)
            ),
            max_leaves=20,
        ).map(lambda value: json.dumps(value).encode()),
        st.sampled_from([b"[" * 100_000, b'{"note": "' + b"n" * 70_000 + b'"}', b"\xef\xbb\xbf{}"]),
    ),
    content_type=st.sampled_from([None, "application/json", "text/plain", FORM, 'x/y; q=""']),
    where=st.sampled_from(["/hub/api/users/alice/tokens", "/hub/api/users/alice/server"]),
)
async def test_api_bodies_of_any_kind(
    hub: HubUnderTest, tokens: dict[str, str], body: bytes, content_type: str | None, where: str
) -> None:
    headers = {"Authorization": f"token {tokens['alice']}"}
    if content_type is not None:
        headers["content-type"] = content_type
    hub.fake.sessions.pop("alice", None)  # a start has something to start
    async with hub.client(headers=headers) as client:
        response = await timed(lambda: client.post(where, content=body))
    event(f"status {response.status_code}")
    if response.status_code >= 400:
        assert response.status_code in (400, 413), response.text[:300]
        api_message(response)
    elif where.endswith("/tokens"):
        assert response.status_code == 201
        made = response.json()
        assert made["note"] is None or (isinstance(made["note"], str) and len(made["note"]) <= 200)
    else:
        assert response.status_code in (201, 202)


# -- /user/<name>/ -------------------------------------------------------------------------


@pytest.fixture
async def others(hub: HubUnderTest) -> dict[str, str]:
    """The session cookies of bob (a user with a running server of his own) and carol (an
    admin without admin_access); alice's server runs."""
    hub.fake.add_session("alice")
    hub.fake.add_session("bob")
    cookies = {}
    for user in ("bob", "carol"):
        async with hub.client() as client:
            await log_in(client, user)
            cookies[user] = f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"
    return cookies


@SHARED_HUB
@given(
    name=NAMES,
    how=st.sampled_from(["all", "quote", "raw"]),
    rest=st.sampled_from(["/", "/api/status", "", "/../alice/api/status", "/%2e%2e/alice/"]),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    accept=st.sampled_from(["text/html", "application/json"]),
    actor=st.sampled_from(["bob", "carol"]),
)
async def test_user_paths_of_any_kind_never_reach_another_users_server(
    hub: HubUnderTest,
    others: dict[str, str],
    name: str,
    how: str,
    rest: str,
    method: str,
    accept: str,
    actor: str,
) -> None:
    path = f"/user/{segment(name, how)}{rest}"
    # /user/bob/../alice/ is bob's own server (the path is his server's business).
    own = unquote(path.split("/")[2]) == actor
    since = len(hub.fake.calls)
    response = await timed(
        lambda: send_raw(hub, method, path, {"accept": accept, "cookie": others[actor]})
    )
    event(f"status {response.status_code}")
    asked = user_calls(hub, since)
    assert "alice" not in asked, (name, path)  # alice's route is never even looked up
    if response.status_code == 200:
        # Only bob's own server, with bob's own token, ever answers.
        assert actor == "bob"
        assert response.json()["headers"]["authorization"] == "token token-of-bob"
    elif own:
        pass  # what bob's own server says
    elif response.headers.get("content-type") == "application/json":
        api_message(response)
    elif response.status_code >= 400:
        page_message(response)


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/user/alice/api/kernels/k/channels?" + "q" * 9000, {}, 414),
        ("/user/" + "a" * 9000 + "/api/kernels/k/channels", {}, 414),
        ("/user/alice/api/kernels/k/channels", {"x-big": "h" * 9000}, 431),
        ("/user/alice/api/kernels/k/channels", {f"x-{i}": "1" for i in range(200)}, 431),
    ],
)
async def test_a_websocket_handshake_too_big_to_parse_is_answered_at_once(
    hub: HubUnderTest, path: str, headers: dict[str, str], status: int
) -> None:
    # uvicorn alone leaves it unanswered until the client gives up (10 s here).
    started = time.monotonic()
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(
            "ws" + hub.url.removeprefix("http") + path, additional_headers=headers, open_timeout=10
        ):
            pass
    assert time.monotonic() - started < 2
    assert refused.value.response.status_code == status


async def test_websockets_to_confusable_names_are_refused(
    hub: HubUnderTest, others: dict[str, str]
) -> None:
    refused = 0
    for name in CONFUSABLES:
        for how in ("all", "quote", "raw"):
            for actor, cookie_header in others.items():
                path = f"/user/{segment(name, how)}/api/kernels/k/channels"
                if unquote(path.split("/")[2]) == actor:
                    continue  # bob/../alice: bob's own server
                refused += 1
                cookie = {"Cookie": cookie_header}
                since = len(hub.fake.calls)
                started = time.monotonic()
                with pytest.raises(websockets.InvalidStatus) as status:
                    async with connect(
                        "ws" + hub.url.removeprefix("http") + path, additional_headers=cookie
                    ):
                        pass
                assert time.monotonic() - started < RESPONSE_MAX_S
                # 414: a request line over websockets' 8 KiB (HubWebSocketProtocol answers it).
                expected = 414 if len(path) > 8000 else 403
                assert status.value.response.status_code == expected, (actor, path[:100])
                assert "alice" not in user_calls(hub, since), (actor, path)
    assert refused >= len(CONFUSABLES) * 3 * 2 - 2
    assert not any(seen.startswith("/user/alice") for seen in hub.upstream_seen)
