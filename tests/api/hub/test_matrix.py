"""Who may do what to alice's things, in one table; and CSRF on every state-changing route.

``MATRIX`` says, for each of alice's resources and each actor, what must happen: ``ok`` (it
is done or shown), ``denied`` (403 with a message; nothing done, nothing shown) or ``login``
(a browser is sent to the login page; nothing done). Each actor's row is one test, over a hub
with ``admin_access`` off and one with it on (``ADMIN_ACCESS_ON`` lists the cells it changes).
Routes are read from the app itself: a new route with ``{name}`` that no resource probes, or
a new state-changing route without a CSRF case, fails ``test_every_*_route_is_covered``.

Also here: CSRF (no token, another session's, another user's, from another site) for every
state-changing route and for /user/; cookies' attributes; every open-redirect ``next``; a
logged-out cookie (an actor of the matrix); a locked-out user with the right password.

Overlaps, kept so that this table is complete on its own: test_proxy.py (who passes
/user/alice/, HTTP and WebSocket), test_api.py (who may act for whom, the XSRF header),
test_pages.py (forms' CSRF, others' forms and logs), test_login.py (cookie flags, logout,
lockout message, open redirects after login), test_cli.py (Secure under TLS).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import httpx
import pytest
import websockets
from starlette.routing import Mount, Route
from websockets.asyncio.client import connect

from hostd.api.client import HostdClient
from hostd.api.hub.app import build_hub_app
from hostd.api.hub.db import HubStore, aware
from hostd.api.hub.identity import LOGIN_COOKIE, SESSION_COOKIE, XSRF_HEADER
from hostd.api.hub.security import DEFAULT_NEXT, Secret
from hostd.api.hub.settings import HubConfig
from hostd.units.values import UsageView
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import PASSWORDS, log_in, xsrf_of
from tests.api.hub.test_login import set_cookie
from tests.api.hub.test_security import OPEN_REDIRECTS

Outcome = Literal["ok", "denied", "login"]
UNSAFE: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EVIL: Final = "http://evil.example"
USAGE_MARK: Final = "123.0M"  # alice's memory as her pages show it (no one else's is)
LOG_MARK: Final = "alice line 2"


# -- actors --------------------------------------------------------------------------------


@dataclass
class Actor:
    """How one actor's requests are sent: a session cookie (with its CSRF token, sent the way
    a browser on the hub would) or an API token, or nothing."""

    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    xsrf: str | None = None

    def client(self, hub: HubUnderTest) -> httpx.AsyncClient:
        return hub.client(headers=self.headers, cookies=self.cookies)

    def api_headers(self) -> dict[str, str]:
        if self.xsrf is None:
            return {}
        return {XSRF_HEADER: self.xsrf, "sec-fetch-site": "same-origin"}

    def form(self, **fields: str) -> dict[str, str]:
        return fields if self.xsrf is None else {"_xsrf": self.xsrf, **fields}


async def session_of(hub: HubUnderTest, user: str) -> Actor:
    async with hub.client() as client:
        assert (await log_in(client, user)).status_code == 303
        xsrf = xsrf_of((await client.get("/hub/home")).text)
        return Actor(cookies={SESSION_COOKIE: client.cookies[SESSION_COOKIE]}, xsrf=xsrf)


def token_of(hub: HubUnderTest, user: str) -> Actor:
    hub.store.record_login(user, ok=True, admin=user in hub.fake.admins)
    token, _ = hub.make_token(user, note=f"{user}'s script")
    return Actor(headers={"Authorization": f"token {token}"})


async def logged_out(hub: HubUnderTest) -> Actor:
    actor = await session_of(hub, "alice")
    async with actor.client(hub) as client:
        response = await client.post("/hub/logout", data=actor.form())
    assert response.status_code == 303
    return actor  # the cookie and token as they were: a copy kept by someone


ACTORS: Final[dict[str, Callable[[HubUnderTest], Awaitable[Actor]]]] = {
    "owner": lambda hub: session_of(hub, "alice"),
    "other user": lambda hub: session_of(hub, "bob"),
    "admin": lambda hub: session_of(hub, "carol"),
    "anonymous": lambda hub: _done(Actor()),
    "other's API token": lambda hub: _done(token_of(hub, "bob")),
    "owner's API token": lambda hub: _done(token_of(hub, "alice")),
    "owner, logged out": logged_out,
}


async def _done(actor: Actor) -> Actor:
    return actor


# -- probes: one per resource of alice's ---------------------------------------------------


def refusal(response: httpx.Response) -> Outcome:
    """``denied`` or ``login`` for a refused request, after checking it says why."""
    if response.status_code in (302, 303):
        assert response.headers["location"].startswith("/hub/login"), response.headers
        return "login"
    assert response.status_code == 403, (response.status_code, response.text[:300])
    if response.headers["content-type"] == "application/json":
        assert response.json()["message"], response.text
    else:
        assert '<p class="error">' in response.text, response.text[:300]
    return "denied"


def did(hub: HubUnderTest, since: int, what: str) -> bool:
    return any(call[:2] == (what, "alice") for call in hub.fake.calls[since:])


async def user_page(hub: HubUnderTest, actor: Actor, accept: str) -> Outcome:
    async with actor.client(hub) as client:
        response = await client.get("/user/alice/api/status", headers={"accept": accept})
    if response.status_code == 200:
        assert response.json()["headers"]["authorization"] == "token token-of-alice"
        return "ok"
    return refusal(response)


async def user_api(hub: HubUnderTest, actor: Actor) -> Outcome:
    return await user_page(hub, actor, "application/json")


async def user_browser(hub: HubUnderTest, actor: Actor) -> Outcome:
    return await user_page(hub, actor, "text/html")


async def websocket(hub: HubUnderTest, actor: Actor) -> Outcome:
    headers = dict(actor.headers)
    if actor.cookies:
        headers["Cookie"] = "; ".join(f"{key}={value}" for key, value in actor.cookies.items())
    url = "ws" + hub.url.removeprefix("http") + "/user/alice/api/kernels/x/channels"
    try:
        async with connect(
            url, additional_headers=headers, origin=websockets.Origin(hub.url)
        ) as ws:
            hello = json.loads(await ws.recv())
    except websockets.InvalidStatus as refused:
        assert refused.response.status_code == 403
        return "denied"
    assert hello["headers"]["authorization"] == "token token-of-alice"
    return "ok"


async def logs(hub: HubUnderTest, actor: Actor) -> Outcome:
    outcomes: set[Outcome] = set()
    async with actor.client(hub) as client:
        for path in ("/hub/logs/alice", "/hub/logs/alice/follow"):
            response = await client.get(path)
            if response.status_code == 200:
                assert LOG_MARK in response.text
                outcomes.add("ok")
            else:
                assert LOG_MARK not in response.text
                outcomes.add(refusal(response))
    [outcome] = outcomes  # both paths agree
    return outcome


async def usage(hub: HubUnderTest, actor: Actor) -> Outcome:
    """Wherever a page shows alice's usage: her home page, the admin page."""
    seen, refusals = False, set()
    async with actor.client(hub) as client:
        for path in ("/hub/home", "/hub/admin"):
            response = await client.get(path)
            if response.status_code == 200:
                seen = seen or USAGE_MARK in response.text
            else:
                refusals.add(refusal(response))
    if seen:
        return "ok"
    return "login" if refusals == {"login"} else "denied"


async def user_model(hub: HubUnderTest, actor: Actor) -> Outcome:
    async with actor.client(hub) as client:
        response = await client.get("/hub/api/users/alice")
    if response.status_code == 200:
        assert response.json()["name"] == "alice"
        return "ok"
    return refusal(response)


async def progress(hub: HubUnderTest, actor: Actor) -> Outcome:
    async with actor.client(hub) as client:
        response = await client.get("/hub/api/users/alice/server/progress")
    if response.status_code == 200:
        assert '"ready": true' in response.text
        return "ok"
    return refusal(response)


async def _start(
    hub: HubUnderTest, actor: Actor, send: Callable[[httpx.AsyncClient], Any]
) -> Outcome:
    hub.fake.sessions.pop("alice", None)  # stopped, as far as the daemon knows
    since = len(hub.fake.calls)
    async with actor.client(hub) as client:
        response: httpx.Response = await send(client)
    started = did(hub, since, "start")
    hub.fake.add_session("alice")  # running again for what follows
    if response.status_code in (201, 303) and started:
        return "ok"
    assert not started, response.text[:300]
    return refusal(response)


async def start_api(hub: HubUnderTest, actor: Actor) -> Outcome:
    return await _start(
        hub,
        actor,
        lambda client: client.post("/hub/api/users/alice/server", headers=actor.api_headers()),
    )


async def start_form(hub: HubUnderTest, actor: Actor) -> Outcome:
    return await _start(
        hub, actor, lambda client: client.post("/hub/spawn/alice", data=actor.form())
    )


async def _stop(
    hub: HubUnderTest, actor: Actor, send: Callable[[httpx.AsyncClient], Any]
) -> Outcome:
    hub.fake.add_session("alice")
    since = len(hub.fake.calls)
    async with actor.client(hub) as client:
        response: httpx.Response = await send(client)
    stopped = did(hub, since, "stop")
    hub.fake.add_session("alice")
    if response.status_code in (204, 303) and stopped:
        return "ok"
    assert not stopped, response.text[:300]
    return refusal(response)


async def stop_api(hub: HubUnderTest, actor: Actor) -> Outcome:
    return await _stop(
        hub,
        actor,
        lambda client: client.delete("/hub/api/users/alice/server", headers=actor.api_headers()),
    )


async def stop_form(hub: HubUnderTest, actor: Actor) -> Outcome:
    return await _stop(hub, actor, lambda client: client.post("/hub/stop/alice", data=actor.form()))


# alice's named server "lab" (named servers, issue 15): the daemon knows it as "alice:lab".
NAMED: Final = "/hub/api/users/alice/servers/lab"


def _named_running(hub: HubUnderTest) -> None:
    view = hub.fake.add_session("alice")
    hub.fake.sessions["alice:lab"] = replace(
        view, server="lab", unit="jupyter-alice:lab.service", url=hub.fake.url_for("alice:lab")
    )


def _named_stopped(hub: HubUnderTest) -> None:
    hub.fake.sessions.pop("alice:lab", None)


def _named_did(hub: HubUnderTest, since: int, what: str) -> bool:
    # A start names the user and passes the server; a stop names the server's key.
    key = "alice" if what == "start" else "alice:lab"
    return any(call[:2] == (what, key) for call in hub.fake.calls[since:])


async def start_named(hub: HubUnderTest, actor: Actor) -> Outcome:
    _named_stopped(hub)
    since = len(hub.fake.calls)
    async with actor.client(hub) as client:
        response = await client.post(NAMED, headers=actor.api_headers())
    started = _named_did(hub, since, "start")
    _named_stopped(hub)
    if response.status_code == 201 and started:
        return "ok"
    assert not started, response.text[:300]
    return refusal(response)


async def stop_named(hub: HubUnderTest, actor: Actor) -> Outcome:
    _named_running(hub)
    since = len(hub.fake.calls)
    async with actor.client(hub) as client:
        response = await client.delete(NAMED, headers=actor.api_headers())
    stopped = _named_did(hub, since, "stop")
    _named_stopped(hub)
    if response.status_code == 204 and stopped:
        return "ok"
    assert not stopped, response.text[:300]
    return refusal(response)


async def progress_named(hub: HubUnderTest, actor: Actor) -> Outcome:
    _named_running(hub)
    async with actor.client(hub) as client:
        response = await client.get(f"{NAMED}/progress")
    _named_stopped(hub)
    if response.status_code == 200:
        assert '"ready": true' in response.text
        return "ok"
    return refusal(response)


async def tokens_list(hub: HubUnderTest, actor: Actor) -> Outcome:
    async with actor.client(hub) as client:
        response = await client.get("/hub/api/users/alice/tokens")
    if response.status_code == 200:
        assert isinstance(response.json()["api_tokens"], list)
        return "ok"
    return refusal(response)


async def tokens_create(hub: HubUnderTest, actor: Actor) -> Outcome:
    before = len(hub.store.tokens("alice"))
    async with actor.client(hub) as client:
        response = await client.post(
            "/hub/api/users/alice/tokens", json={"note": "made"}, headers=actor.api_headers()
        )
    made = len(hub.store.tokens("alice")) - before
    if response.status_code == 201 and made == 1:
        return "ok"
    assert made == 0, response.text[:300]
    return refusal(response)


async def tokens_delete(hub: HubUnderTest, actor: Actor) -> Outcome:
    _, victim = hub.make_token("alice", note="victim")
    async with actor.client(hub) as client:
        response = await client.delete(
            f"/hub/api/users/alice/tokens/{victim.id}", headers=actor.api_headers()
        )
    gone = victim.id not in {row.id for row in hub.store.tokens("alice")}
    if response.status_code == 204 and gone:
        return "ok"
    assert not gone, response.text[:300]
    return refusal(response)


_reports: dict[int, tuple[int, datetime]] = {}


def activity_body(hub: HubUnderTest) -> dict[str, Any]:
    """A report of alice's activity, a second later each time: the latest report wins, so one
    that took effect is seen in her last_activity. The first is half an hour ahead of the
    hub's first report (JupyterHub takes up to 59 minutes of clock skew), taken when the test
    runs: later than any activity the proxy records meanwhile."""
    if id(hub) not in _reports:
        _reports[id(hub)] = (0, datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=30))
    count, last = _reports[id(hub)]
    at = last + timedelta(seconds=1)
    _reports[id(hub)] = (count + 1, at)
    return {"last_activity": at.isoformat(), "servers": {"": {"last_activity": at.isoformat()}}}


async def activity_recorded(hub: HubUnderTest, since: int = 0) -> bool:
    """Whether the last report sent is alice's last_activity now."""
    user = hub.store.user("alice")
    if user is None or user.last_activity is None or id(hub) not in _reports:
        return False
    return aware(user.last_activity) == _reports[id(hub)][1]


async def activity(hub: HubUnderTest, actor: Actor) -> Outcome:
    hub.store.record_login("alice", ok=True)  # the hub knows her (404 otherwise)
    body = activity_body(hub)
    async with actor.client(hub) as client:
        response = await client.post(
            "/hub/api/users/alice/activity", json=body, headers=actor.api_headers()
        )
    recorded = await activity_recorded(hub)
    if response.status_code == 200 and recorded:
        return "ok"
    assert not recorded, response.text[:300]
    return refusal(response)


async def spawn_pending(hub: HubUnderTest, actor: Actor) -> Outcome:
    hub.fake.add_session("alice", state="starting")
    try:
        async with actor.client(hub) as client:
            response = await client.get("/hub/spawn-pending/alice")
    finally:
        hub.fake.add_session("alice")
    if response.status_code == 200:
        assert 'id="progress"' in response.text and 'id="stop"' in response.text
        return "ok"
    assert 'id="progress"' not in response.text
    return refusal(response)


Probe = Callable[[HubUnderTest, Actor], Awaitable[Outcome]]


@dataclass(frozen=True)
class Resource:
    probe: Probe
    routes: tuple[tuple[str, str], ...]  # the app's routes it goes through (checked below)


RESOURCES: Final[dict[str, Resource]] = {
    "page /user/alice/ (script)": Resource(user_api, ()),
    "page /user/alice/ (browser)": Resource(user_browser, ()),
    "WebSocket /user/alice/api/kernels/x/channels": Resource(websocket, ()),
    "alice's logs": Resource(
        logs, (("GET", "/hub/logs/{name}"), ("GET", "/hub/logs/{name}/follow"))
    ),
    "alice's usage": Resource(usage, ()),
    "alice's user model": Resource(user_model, (("GET", "/hub/api/users/{name}"),)),
    "alice's start progress": Resource(
        progress, (("GET", "/hub/api/users/{name}/server/progress"),)
    ),
    "start alice's server (API)": Resource(start_api, (("POST", "/hub/api/users/{name}/server"),)),
    "start alice's server (form)": Resource(start_form, (("POST", "/hub/spawn/{name}"),)),
    "stop alice's server (API)": Resource(stop_api, (("DELETE", "/hub/api/users/{name}/server"),)),
    "stop alice's server (form)": Resource(stop_form, (("POST", "/hub/stop/{name}"),)),
    "start alice's named server (API)": Resource(
        start_named, (("POST", "/hub/api/users/{name}/servers/{server}"),)
    ),
    "stop alice's named server (API)": Resource(
        stop_named, (("DELETE", "/hub/api/users/{name}/servers/{server}"),)
    ),
    "alice's named server's progress": Resource(
        progress_named, (("GET", "/hub/api/users/{name}/servers/{server}/progress"),)
    ),
    "list alice's tokens": Resource(tokens_list, (("GET", "/hub/api/users/{name}/tokens"),)),
    "make a token for alice": Resource(tokens_create, (("POST", "/hub/api/users/{name}/tokens"),)),
    "revoke alice's token": Resource(
        tokens_delete, (("DELETE", "/hub/api/users/{name}/tokens/{token_id:int}"),)
    ),
    "report alice's activity": Resource(activity, (("POST", "/hub/api/users/{name}/activity"),)),
    "alice's spawn-pending page": Resource(spawn_pending, (("GET", "/hub/spawn-pending/{name}"),)),
}

# The columns, in ACTORS' order: own(er, alice), oth(er user, bob), adm(in, carol, with
# admin_access off), anon(ymous), bTok (bob's API token), aTok (alice's API token), out (alice's
# cookie after she logged out). The hub's pages send a token-only actor to the login page
# (tokens are for scripts); the API and /user/ refuse it with 403.
_COLUMNS: Final = tuple(ACTORS)
_TABLE: Final[dict[str, str]] = {
    #                                              own   oth   adm   anon  bTok  aTok  out
    "page /user/alice/ (script)":                  "ok    deny  deny  deny  deny  ok    deny",
    "page /user/alice/ (browser)":                 "ok    deny  deny  login deny  ok    login",
    "WebSocket /user/alice/api/kernels/x/channels": "ok    deny  deny  deny  deny  ok    deny",
    "alice's logs":                                "ok    deny  ok    login login login login",
    "alice's usage":                               "ok    deny  ok    login login login login",
    "alice's user model":                          "ok    deny  ok    deny  deny  ok    deny",
    "alice's start progress":                      "ok    deny  ok    deny  deny  ok    deny",
    "start alice's server (API)":                  "ok    deny  ok    deny  deny  ok    deny",
    "start alice's server (form)":                 "ok    deny  ok    login login login login",
    "stop alice's server (API)":                   "ok    deny  ok    deny  deny  ok    deny",
    "stop alice's server (form)":                  "ok    deny  ok    login login login login",
    "start alice's named server (API)":            "ok    deny  ok    deny  deny  ok    deny",
    "stop alice's named server (API)":             "ok    deny  ok    deny  deny  ok    deny",
    "alice's named server's progress":             "ok    deny  ok    deny  deny  ok    deny",
    "list alice's tokens":                         "ok    deny  ok    deny  deny  ok    deny",
    # A token made for alice opens her server: not for an admin without admin_access.
    "make a token for alice":                      "ok    deny  deny  deny  deny  ok    deny",
    "revoke alice's token":                        "ok    deny  ok    deny  deny  ok    deny",
    "report alice's activity":                     "ok    deny  ok    deny  deny  ok    deny",
    "alice's spawn-pending page":                  "ok    deny  ok    login login login login",
}  # fmt: skip
_WORDS: Final[dict[str, Outcome]] = {"ok": "ok", "deny": "denied", "login": "login"}
MATRIX: Final[dict[str, dict[str, Outcome]]] = {
    resource: dict(zip(_COLUMNS, (_WORDS[word] for word in row.split()), strict=True))
    for resource, row in _TABLE.items()
}
# With admin_access on, an admin also reaches alice's server, and may make her a token.
ADMIN_ACCESS_ON: Final[dict[tuple[str, str], Outcome]] = {
    ("page /user/alice/ (script)", "admin"): "ok",
    ("page /user/alice/ (browser)", "admin"): "ok",
    ("WebSocket /user/alice/api/kernels/x/channels", "admin"): "ok",
    ("make a token for alice", "admin"): "ok",
}


def expected(actor: str, admin_access: bool) -> dict[str, Outcome]:
    row = {resource: MATRIX[resource][actor] for resource in RESOURCES}
    if admin_access:
        row.update({res: out for (res, who), out in ADMIN_ACCESS_ON.items() if who == actor})
    return row


@pytest.mark.parametrize(
    "hub_options", [{}, {"admin_access": True}], ids=["admin_access-off", "admin_access-on"]
)
@pytest.mark.parametrize("actor_name", list(ACTORS))
async def test_authorization_matrix(
    hub: HubUnderTest, hub_options: dict[str, Any], actor_name: str
) -> None:
    hub.fake.add_session("alice")
    hub.fake.add_session("bob")
    hub.fake.usages["alice"] = UsageView(
        user="alice", memory_bytes=123 * 1024**2, memory_limit_bytes=2 * 1024**3, cpu_percent=5
    )
    hub.fake.follow_forever = False
    actor = await ACTORS[actor_name](hub)
    seen = {name: await resource.probe(hub, actor) for name, resource in RESOURCES.items()}
    want = expected(actor_name, bool(hub_options.get("admin_access")))
    wrong = {
        name: f"{seen[name]}, expected {want[name]}" for name in seen if seen[name] != want[name]
    }
    assert wrong == {}, actor_name
    # Nothing was done for anyone else along the way.
    assert hub.fake.sessions["bob"].state == "running"


def _app_routes() -> list[tuple[str, str]]:
    """Every (method, path) the hub's app routes (its own pages and API; /user/ is the
    proxy's, before any routing)."""
    config = HubConfig(state_dir=Path("/nonexistent"))
    store = HubStore.open("sqlite://")
    try:
        app = build_hub_app(
            config, store=store, secret=Secret(b"k" * 32), daemon=HostdClient("/nonexistent")
        )
    finally:
        store.close()
    routes: list[tuple[str, str]] = []
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path == "/hub/static"  # files: GET and HEAD only
            continue
        assert isinstance(route, Route)
        routes.extend((method, route.path) for method in sorted(route.methods or ()))
    return routes


def test_every_route_on_a_users_things_is_in_the_matrix() -> None:
    named = {(method, path) for method, path in _app_routes() if "{name}" in path}
    named -= {("HEAD", path) for _, path in named}
    probed = {route for resource in RESOURCES.values() for route in resource.routes}
    assert named == probed, "a route with {name} that the matrix does not probe (or the reverse)"


# -- CSRF on every state-changing route ----------------------------------------------------


Send = Callable[
    [HubUnderTest, httpx.AsyncClient, str | None, dict[str, str]], Awaitable[httpx.Response]
]
Done = Callable[[HubUnderTest, int], Awaitable[bool]]


@dataclass(frozen=True)
class Change:
    """A state-changing route: how to send it with a given CSRF token and extra headers,
    whether it took effect (calls to the daemon since ``since``), and what it needs first."""

    kind: Literal["form", "api", "login"]
    send: Send
    done: Done
    prepare: Callable[[HubUnderTest], None] = lambda hub: None


def _form(path: str | Callable[[HubUnderTest], str], **fields: str) -> Send:
    async def send(
        hub: HubUnderTest, client: httpx.AsyncClient, token: str | None, headers: dict[str, str]
    ) -> httpx.Response:
        data = dict(fields) if token is None else {"_xsrf": token, **fields}
        where = path(hub) if callable(path) else path
        return await client.post(where, data=data, headers=headers)

    return send


def _api(method: str, path: str | Callable[[HubUnderTest], str]) -> Send:
    async def send(
        hub: HubUnderTest, client: httpx.AsyncClient, token: str | None, headers: dict[str, str]
    ) -> httpx.Response:
        sent = dict(headers) if token is None else {**headers, XSRF_HEADER: token}
        where = path(hub) if callable(path) else path
        return await client.request(method, where, headers=sent)

    return send


def _called(what: str) -> Done:
    async def done(hub: HubUnderTest, since: int) -> bool:
        return did(hub, since, what)

    return done


def _named_called(what: str) -> Done:
    async def done(hub: HubUnderTest, since: int) -> bool:
        return _named_did(hub, since, what)

    return done


_victims: dict[int, int] = {}


def _victim(hub: HubUnderTest) -> str:
    return str(_victims[id(hub)])


def _new_victim(hub: HubUnderTest) -> None:
    _, row = hub.make_token("alice", note="victim")
    assert row.id is not None
    _victims[id(hub)] = row.id


async def _victim_gone(hub: HubUnderTest, since: int) -> bool:
    return _victims[id(hub)] not in {row.id for row in hub.store.tokens("alice")}


async def _token_made(hub: HubUnderTest, since: int) -> bool:
    return any(row.note != "victim" for row in hub.store.tokens("alice"))


def _stopped(hub: HubUnderTest) -> None:
    hub.fake.sessions.pop("alice", None)


def _running(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")


async def _logged_in(hub: HubUnderTest, since: int) -> bool:
    return any(call[:2] == ("authenticate", "alice") for call in hub.fake.calls[since:])


async def _checked_after_each_case(hub: HubUnderTest, since: int) -> bool:
    return False  # a logout: the test asks /hub/home whether the session is still there


async def _activity_send(
    hub: HubUnderTest, client: httpx.AsyncClient, token: str | None, headers: dict[str, str]
) -> httpx.Response:
    sent = dict(headers) if token is None else {**headers, XSRF_HEADER: token}
    return await client.post("/hub/api/users/alice/activity", json=activity_body(hub), headers=sent)


CHANGES: Final[dict[tuple[str, str], Change]] = {
    ("POST", "/hub/login"): Change(
        "login",
        _form("/hub/login", username="alice", password=PASSWORDS["alice"]),
        _logged_in,
    ),
    ("POST", "/hub/logout"): Change("form", _form("/hub/logout"), _checked_after_each_case),
    ("POST", "/hub/spawn/{name}"): Change(
        "form", _form("/hub/spawn/alice"), _called("start"), _stopped
    ),
    ("POST", "/hub/stop/{name}"): Change(
        "form", _form("/hub/stop/alice"), _called("stop"), _running
    ),
    ("POST", "/hub/token"): Change("form", _form("/hub/token"), _token_made),
    ("POST", "/hub/token/{token_id:int}/delete"): Change(
        "form",
        _form(lambda hub: f"/hub/token/{_victim(hub)}/delete"),
        _victim_gone,
        _new_victim,
    ),
    ("POST", "/hub/api/users/{name}/server"): Change(
        "api", _api("POST", "/hub/api/users/alice/server"), _called("start"), _stopped
    ),
    ("DELETE", "/hub/api/users/{name}/server"): Change(
        "api", _api("DELETE", "/hub/api/users/alice/server"), _called("stop"), _running
    ),
    ("POST", "/hub/api/users/{name}/servers/{server}"): Change(
        "api", _api("POST", NAMED), _named_called("start"), _named_stopped
    ),
    ("DELETE", "/hub/api/users/{name}/servers/{server}"): Change(
        "api", _api("DELETE", NAMED), _named_called("stop"), _named_running
    ),
    ("POST", "/hub/api/users/{name}/tokens"): Change(
        "api", _api("POST", "/hub/api/users/alice/tokens"), _token_made
    ),
    ("POST", "/hub/api/users/{name}/activity"): Change(
        "api",
        _activity_send,
        activity_recorded,
        lambda hub: hub.store.record_login("alice", ok=True),
    ),
    ("DELETE", "/hub/api/users/{name}/tokens/{token_id:int}"): Change(
        "api",
        _api("DELETE", lambda hub: f"/hub/api/users/alice/tokens/{_victim(hub)}"),
        _victim_gone,
        _new_victim,
    ),
}

SAME_ORIGIN: Final = {"sec-fetch-site": "same-origin"}
# (case, whose token, headers): each must be refused.
CSRF_CASES: Final = [
    ("no token", None, SAME_ORIGIN),
    ("an empty token", "", SAME_ORIGIN),
    ("a forged token", "forged", SAME_ORIGIN),
    ("another session's token (same user)", "theirs", SAME_ORIGIN),
    ("another user's token", "bobs", SAME_ORIGIN),
    ("the right token, Origin another site", "mine", {"origin": EVIL}),
    ("the right token, Origin null", "mine", {"origin": "null"}),
    ("the right token, Sec-Fetch-Site cross-site", "mine", {"sec-fetch-site": "cross-site"}),
    ("the right token, Sec-Fetch-Site same-site", "mine", {"sec-fetch-site": "same-site"}),
    (
        "the right token, same-origin Origin but cross-site Sec-Fetch-Site",
        "mine",
        {"origin": "", "sec-fetch-site": "cross-site"},
    ),
]


def test_every_state_changing_route_has_csrf_cases() -> None:
    unsafe = {(method, path) for method, path in _app_routes() if method in UNSAFE}
    assert unsafe == set(CHANGES), "a state-changing route without CSRF cases (or the reverse)"


async def _login_form_token(hub: HubUnderTest) -> tuple[Actor, str]:
    async with hub.client() as client:
        page = await client.get("/hub/login")
        return Actor(cookies={LOGIN_COOKIE: client.cookies[LOGIN_COOKIE]}), xsrf_of(page.text)


async def _browsers(hub: HubUnderTest, kind: str) -> tuple[Actor, dict[str, str]]:
    """alice's browser, and the CSRF tokens of it ("mine"), of another of alice's sessions
    ("theirs") and of bob's ("bobs"); for the login form, of three browsers' login pages
    (its token is bound to each browser's nonce cookie)."""
    if kind == "login":
        mine, my_token = await _login_form_token(hub)
        _, their_token = await _login_form_token(hub)
        _, other = await _login_form_token(hub)
        return mine, {"mine": my_token, "theirs": their_token, "bobs": other}
    mine = await session_of(hub, "alice")
    theirs, bobs = await session_of(hub, "alice"), await session_of(hub, "bob")
    tokens = {"mine": mine.xsrf or "", "theirs": theirs.xsrf or "", "bobs": bobs.xsrf or ""}
    assert len(set(tokens.values())) == 3
    return mine, tokens


@pytest.mark.parametrize("route", list(CHANGES), ids=lambda route: " ".join(route))
async def test_csrf_on_every_state_changing_route(
    hub: HubUnderTest, route: tuple[str, str]
) -> None:
    change = CHANGES[route]
    mine, tokens = await _browsers(hub, change.kind)
    for case, whose, headers in CSRF_CASES:
        sent = {
            key: (value or hub.url) if key == "origin" else value for key, value in headers.items()
        }
        token = None if whose is None else tokens.get(whose, whose)
        change.prepare(hub)
        since = len(hub.fake.calls)
        async with mine.client(hub) as client:
            response = await change.send(hub, client, token, sent)
        assert response.status_code == 403, (case, response.status_code, response.text[:300])
        assert not await change.done(hub, since), case
        if change.kind == "api":
            assert response.json()["message"], case
        else:
            assert 'class="error"' in response.text, case
        if change.kind != "login":  # still logged in: a refused logout logged no one out
            async with mine.client(hub) as client:
                assert (await client.get("/hub/home")).status_code == 200, case
    # The same request with the right token, from the hub's own page, does it: the refusals
    # above were the token's and the site's doing.
    change.prepare(hub)
    since = len(hub.fake.calls)
    async with mine.client(hub) as client:
        sent = {"origin": hub.url, **SAME_ORIGIN}
        response = await change.send(hub, client, tokens["mine"], sent)
    assert response.status_code < 400, response.text[:300]
    if route == ("POST", "/hub/logout"):
        async with mine.client(hub) as client:
            assert (await client.get("/hub/home")).status_code == 302
    else:
        assert await change.done(hub, since)


async def test_changes_through_user_paths_from_another_site_are_refused(hub: HubUnderTest) -> None:
    # /user/ is alice's own server: the hub adds no CSRF token of its own there (JupyterLab has
    # its own, which the server skips for the hub's token), so what stops another site is the
    # SameSite=Lax cookie and the same-site check, for every method that changes something.
    hub.fake.add_session("alice")
    alice = await session_of(hub, "alice")
    async with alice.client(hub) as client:
        for method in sorted(UNSAFE):
            for headers in (
                {"origin": EVIL},
                {"origin": "null"},
                {"sec-fetch-site": "cross-site"},
                {"sec-fetch-site": "same-site"},
            ):
                before = len(hub.upstream_seen)
                response = await client.request(method, "/user/alice/api/kernels", headers=headers)
                assert response.status_code == 403, (method, headers)
                assert response.json()["message"]
                assert len(hub.upstream_seen) == before, (method, headers)
            same = await client.request(
                method, "/user/alice/api/kernels", headers={"origin": hub.url, **SAME_ORIGIN}
            )
            assert same.status_code == 200, method


# -- cookies, redirects, logout, lockout ---------------------------------------------------


async def _cookies(hub: HubUnderTest, verify: Any = True) -> tuple[dict[str, str], dict[str, str]]:
    async with hub.client(verify=verify) as client:
        page = await client.get("/hub/login")
        login = await client.post(
            "/hub/login",
            data={"_xsrf": xsrf_of(page.text), "username": "alice", "password": PASSWORDS["alice"]},
        )
    return set_cookie(page, LOGIN_COOKIE), set_cookie(login, SESSION_COOKIE)


async def test_cookies_are_httponly_samesite_and_not_secure_over_http(hub: HubUnderTest) -> None:
    for cookie in await _cookies(hub):
        assert "httponly" in cookie and cookie["samesite"].lower() == "lax", cookie
        assert "secure" not in cookie  # a browser would drop a Secure cookie over HTTP


class TestUnderTLS:
    @pytest.fixture
    def hub_options(self, certificate: tuple[Path, Path]) -> dict[str, Any]:
        cert, key = certificate
        return {
            "ssl_cert": cert,
            "ssl_key": key,
            "tls": {"ssl_certfile": str(cert), "ssl_keyfile": str(key)},
        }

    async def test_cookies_are_also_secure(
        self, hub: HubUnderTest, certificate: tuple[Path, Path]
    ) -> None:
        context = ssl.create_default_context(cafile=str(certificate[0]))
        for cookie in await _cookies(hub, verify=context):
            assert "httponly" in cookie and cookie["samesite"].lower() == "lax", cookie
            assert "secure" in cookie, cookie


async def test_every_open_redirect_next_is_refused_everywhere_next_is_taken(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice")
    alice = await session_of(hub, "alice")
    for target in OPEN_REDIRECTS:
        async with hub.client() as anonymous:
            page = await anonymous.get("/hub/login", params={"next": target})
            assert page.status_code == 200
            assert 'name="next"' not in page.text, target  # not carried into the form
            login = await anonymous.post(
                "/hub/login",
                data={
                    "_xsrf": xsrf_of(page.text),
                    "username": "alice",
                    "password": PASSWORDS["alice"],
                    "next": target,
                },
            )
            assert (login.status_code, login.headers["location"]) == (303, DEFAULT_NEXT), target
        async with alice.client(hub) as client:
            again = await client.get("/hub/login", params={"next": target})
            assert again.headers["location"] == DEFAULT_NEXT, target
            home = await client.get("/hub/home", params={"next": target})
            assert home.status_code == 200, target  # running, but not sent to the target
            for path in ("/hub/stop/alice", "/hub/spawn/alice"):
                acted = await client.post(path, data=alice.form(next=target))
                assert (acted.status_code, acted.headers["location"]) == (303, DEFAULT_NEXT), (
                    path,
                    target,
                )
            hub.fake.add_session("alice")


async def test_a_locked_out_user_stays_out_with_the_right_password_until_it_ends(
    hub: HubUnderTest,
) -> None:
    # The daemon keeps the lockout (tests/hostd/test_auth.py: its clock, and that the right
    # password is refused too); the hub lets no one through while it says so.
    hub.fake.locked_out["alice"] = 600
    for password in (PASSWORDS["alice"], "a-wrong-password"):
        async with hub.client() as client:
            response = await log_in(client, "alice", password)
            assert response.status_code == 429
            assert response.headers["retry-after"] == "600"
            assert "Try again in 10 minutes" in response.text
            assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
            assert (await client.get("/hub/home")).status_code == 302
    async with hub.client() as bob:  # a lockout is one name's
        assert (await log_in(bob, "bob")).status_code == 303
    del hub.fake.locked_out["alice"]  # the lockout ends
    async with hub.client() as client:
        assert (await log_in(client, "alice")).status_code == 303
        assert (await client.get("/hub/home")).status_code == 200
