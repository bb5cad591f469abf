"""What admins' tools read and people's links open: health, info, /hub/metrics (JupyterHub's
names, pre-created labels, counters in _total, requests by route template, the daemon's series
relayed), activity reports, /hub/user-redirect/ and /hub/spawn-pending/. Over the fake daemon:
the systemd tier scrapes a real hub with a real Prometheus (systemd/test_prometheus.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from hostd.units.errors import SystemdUnavailable
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import log_in
from tests.api.hub.test_subdomains import SUBDOMAINS, open_server
from tests.api.hub.test_subdomains import browser as subdomain_browser

# JupyterHub's series hostd's hub has a meaning for, with the labels each must carry.
JUPYTERHUB_SERIES = {
    "jupyterhub_running_servers": ("gauge", set()),
    "jupyterhub_total_users": ("gauge", set()),
    "jupyterhub_active_users": ("gauge", {"period"}),
    "jupyterhub_server_spawn_duration_seconds": ("histogram", {"status", "reason"}),
    "jupyterhub_server_stop_seconds": ("histogram", {"status"}),
    "jupyterhub_request_duration_seconds": ("histogram", {"method", "handler", "code"}),
    "jupyterhub_login_duration_seconds": ("histogram", {"status"}),
    "jupyterhub_logout_duration_seconds": ("histogram", set()),
}


def token_for(hub: HubUnderTest, user: str) -> dict[str, str]:
    hub.store.record_login(user, ok=True, admin=user in hub.fake.admins)
    token, _ = hub.make_token(user)
    return {"Authorization": f"token {token}"}


async def scrape(hub: HubUnderTest) -> tuple[str, dict[str, tuple[str, list[Sample]]]]:
    """/hub/metrics as the admin carol's Prometheus reads it: the text and its families."""
    async with hub.client(headers=token_for(hub, "carol")) as client:
        response = await client.get("/hub/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {
        family.name: (family.type, family.samples)
        for family in text_string_to_metric_families(response.text)
    }
    return response.text, families


def value(samples: list[Sample], name: str, **labels: str) -> float:
    [found] = [s.value for s in samples if s.name == name and s.labels == labels]
    return found


# -- health and info -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/hub/health", "/hub/api/health"])
async def test_health_answers_without_auth_nor_the_daemon(hub: HubUnderTest, path: str) -> None:
    hub.fake.fail["health"] = hub.fake.fail["list"] = SystemdUnavailable("down")
    before = len(hub.fake.calls)
    async with hub.client() as client:
        response = await client.get(path)
        head = await client.head(path)
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert head.status_code == 200
    assert hub.fake.calls[before:] == []  # a liveness probe waits on nothing


async def test_info_has_jupyterhubs_fields_for_admins_only(hub: HubUnderTest) -> None:
    async with hub.client(headers=token_for(hub, "carol")) as client:
        info = await client.get("/hub/api/info")
    assert info.status_code == 200
    body = info.json()
    assert set(body) == {"version", "python", "sys_executable", "spawner", "authenticator"}
    assert set(body["spawner"]) == set(body["authenticator"]) == {"class", "version"}
    for headers in ({}, token_for(hub, "bob")):
        async with hub.client(headers=headers) as client:
            refused = await client.get("/hub/api/info")
        assert refused.status_code == 403 and refused.json()["status"] == 403


# -- metrics: who may read them ------------------------------------------------------------


async def test_metrics_are_refused_without_an_admins_token(hub: HubUnderTest) -> None:
    for path in ("/hub/metrics", "/hub/api/metrics"):
        for headers in ({}, token_for(hub, "bob"), {"Authorization": "token not-a-token"}):
            async with hub.client(headers=headers) as client:
                response = await client.get(path)
            assert response.status_code == 403, (path, headers)
            assert response.json()["message"]
            assert "jupyterhub_" not in response.text
    async with hub.client() as client:  # an admin's browser cookie reads them too
        await log_in(client, "carol")
        assert (await client.get("/hub/metrics")).status_code == 200


@pytest.mark.parametrize("hub_options", [{"metrics_public": True}])
async def test_metrics_public_opens_them_to_anyone(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        response = await client.get("/hub/metrics")
    assert response.status_code == 200 and "jupyterhub_running_servers" in response.text


# -- metrics: what they say ----------------------------------------------------------------


async def test_every_jupyterhub_series_is_there_with_its_labels_made_in_advance(
    hub: HubUnderTest,
) -> None:
    text, families = await scrape(hub)
    for name, (kind, labels) in JUPYTERHUB_SERIES.items():
        assert name in families, name
        assert families[name][0] == kind, name
        for sample in families[name][1]:
            assert set(sample.labels) - {"le"} == labels, (name, sample)
    # Before any start, stop, login or failure, every status is there at 0.
    spawns = families["jupyterhub_server_spawn_duration_seconds"][1]
    count = "jupyterhub_server_spawn_duration_seconds_count"
    for status in ("success", "failure", "error"):
        assert value(spawns, count, status=status, reason="") == 0
    for reason in ("throttled", "too-many-users", "already-pending"):
        assert value(spawns, count, status="failure", reason=reason) == 0
    for name in ("jupyterhub_server_stop_seconds", "jupyterhub_login_duration_seconds"):
        for status in ("success", "failure"):
            assert value(families[name][1], f"{name}_count", status=status) == 0
    periods = {s.labels["period"] for s in families["jupyterhub_active_users"][1]}
    assert periods == {"24h", "7d", "30d"}
    (build,) = families["hostd_hub_build_info"][1]
    assert build.value == 1 and build.labels["version"]
    # Counters end in _total (Prometheus' naming rule); no percent anywhere.
    for line in text.splitlines():
        if line.startswith("# TYPE ") and line.endswith(" counter"):
            assert line.split()[2].endswith("_total"), line
    assert "percent" not in text


async def test_the_daemons_series_come_along_and_its_absence_is_a_series(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice")
    _, families = await scrape(hub)
    assert "hostd_sessions" in families  # the fake daemon's exposition, relayed
    assert families["hostd_hub_daemon_up"][1][0].value == 1
    hub.fake.fail["metrics"] = SystemdUnavailable("the daemon is restarting")
    _, families = await scrape(hub)
    assert "hostd_sessions" not in families
    assert families["hostd_hub_daemon_up"][1][0].value == 0
    assert "jupyterhub_running_servers" in families


async def test_servers_users_and_active_users_are_counted(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    hub.fake.add_session("bob")
    hub.fake.add_session("dave", state="starting")  # not running yet: not counted
    hub.store.record_login("alice", ok=True)
    hub.store.record_login("bob", ok=True)
    hub.store.record_activity("alice", datetime.now(UTC) - timedelta(hours=1))
    hub.store.record_activity("bob", datetime.now(UTC) - timedelta(days=3))
    _, families = await scrape(hub)  # carol's token: carol is a user too (never active)
    assert families["jupyterhub_running_servers"][1][0].value == 2
    assert families["jupyterhub_total_users"][1][0].value == 3
    active = {s.labels["period"]: s.value for s in families["jupyterhub_active_users"][1]}
    assert active == {"24h": 1, "7d": 2, "30d": 2}


async def test_starts_stops_and_logins_are_timed_by_outcome(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        assert (await log_in(client, "alice", "wrong")).status_code == 403
        assert (await log_in(client, "alice")).status_code == 303
    headers = token_for(hub, "alice")
    async with hub.client(headers=headers) as client:
        assert (await client.post("/hub/api/users/alice/server")).status_code == 201
        assert (await client.delete("/hub/api/users/alice/server")).status_code == 204
    _, families = await scrape(hub)
    spawns = families["jupyterhub_server_spawn_duration_seconds"][1]
    count = "jupyterhub_server_spawn_duration_seconds_count"
    assert value(spawns, count, status="success", reason="") == 1
    stops = families["jupyterhub_server_stop_seconds"][1]
    assert value(stops, "jupyterhub_server_stop_seconds_count", status="success") == 1
    logins = families["jupyterhub_login_duration_seconds"][1]
    assert value(logins, "jupyterhub_login_duration_seconds_count", status="success") == 1
    assert value(logins, "jupyterhub_login_duration_seconds_count", status="failure") == 1


async def test_requests_are_labelled_by_route_template_not_by_path(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    async with hub.client(headers=token_for(hub, "carol")) as client:
        for name in ("alice", "bob", "erin", "x" * 30):
            await client.get(f"/hub/api/users/{name}")
        for n in range(5):
            await client.get(f"/hub/no-such-page-{n}")
        # A method outside the label set (llhttp refuses an unknown one like BREW before the
        # app: 400, never counted).
        await client.request("PROPFIND", "/hub/api/users/alice")
    async with hub.client(headers=token_for(hub, "alice")) as client:
        assert (await client.get("/user/alice/api/status")).status_code == 200
    _, families = await scrape(hub)
    samples = families["jupyterhub_request_duration_seconds"][1]
    counts = {
        (s.labels["method"], s.labels["handler"], s.labels["code"]): s.value
        for s in samples
        if s.name == "jupyterhub_request_duration_seconds_count"
    }
    assert counts[("GET", "/hub/api/users/{name}", "200")] == 1  # alice
    assert counts[("GET", "/hub/api/users/{name}", "404")] == 3  # never seen, and too long
    assert counts[("GET", "unmatched", "404")] == 5
    assert counts[("other", "/hub/api/users/{name}", "405")] == 1
    assert counts[("GET", "/user/{name}/", "200")] == 1
    handlers = {s.labels["handler"] for s in samples}
    assert not any(name in handler for handler in handlers for name in ("alice", "bob"))


# -- activity ------------------------------------------------------------------------------


async def test_activity_report_by_the_users_own_token(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
    body = {"last_activity": at.isoformat(), "servers": {"": {"last_activity": at.isoformat()}}}
    before = len(hub.fake.calls)
    async with hub.client(headers=token_for(hub, "alice")) as client:
        response = await client.post("/hub/api/users/alice/activity", json=body)
        older = await client.post(
            "/hub/api/users/alice/activity",
            json={"last_activity": (at - timedelta(days=1)).isoformat().replace("+00:00", "Z")},
        )
    assert response.status_code == 200 and response.content == b""
    assert older.status_code == 200
    record = hub.store.user("alice")
    assert record is not None and record.last_activity is not None
    # The later report stays; the recent one also told the daemon's idle clock.
    assert record.last_activity.replace(tzinfo=UTC) >= at
    for _ in range(50):
        if ("activity", "alice") in [call[:2] for call in hub.fake.calls[before:]]:
            break
        await asyncio.sleep(0.02)
    assert ("activity", "alice") in [call[:2] for call in hub.fake.calls[before:]]


async def test_activity_for_another_user_is_refused(hub: HubUnderTest) -> None:
    hub.store.record_login("bob", ok=True)
    body = {"last_activity": datetime.now(UTC).isoformat()}
    async with hub.client(headers=token_for(hub, "alice")) as client:
        response = await client.post("/hub/api/users/bob/activity", json=body)
    assert response.status_code == 403 and response.json()["message"]
    bob = hub.store.user("bob")
    assert bob is not None and bob.last_activity is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[]", "JSON object"),
        ("{", "not JSON"),
        ({}, "at least one of"),
        ({"last_activity": "yesterday"}, "Not a valid timestamp"),
        ({"last_activity": 12}, "Not a valid timestamp"),
        ({"last_activity": "9" * 5000}, "Not a valid timestamp"),
        ({"last_activity": "2999-01-01T00:00:00Z"}, "more than an hour in the future"),
        ({"servers": ["x"]}, "servers must be a dict"),
        ({"servers": {"": "now"}}, "servers must be a dict"),
        ({"servers": {"": {}}}, "servers must be a dict"),
        ({"servers": {"gpu": {"last_activity": "2020-01-01T00:00:00Z"}}}, "No such server"),
    ],
)
async def test_activity_reports_it_cannot_use_are_400(
    hub: HubUnderTest, body: Any, message: str
) -> None:
    async with hub.client(headers=token_for(hub, "alice")) as client:
        if isinstance(body, str):
            response = await client.post(
                "/hub/api/users/alice/activity",
                content=body,
                headers={"content-type": "application/json"},
            )
        else:
            response = await client.post("/hub/api/users/alice/activity", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["message"]


async def test_activity_of_a_user_the_hub_never_saw_is_404(hub: HubUnderTest) -> None:
    body = {"last_activity": datetime.now(UTC).isoformat()}
    async with hub.client(headers=token_for(hub, "carol")) as client:
        response = await client.post("/hub/api/users/erin/activity", json=body)
    assert response.status_code == 404 and response.json()["status"] == 404


# -- user-redirect and spawn-pending -------------------------------------------------------


async def test_user_redirect_goes_to_the_logged_in_users_server(hub: HubUnderTest) -> None:
    path = "/hub/user-redirect/lab/tree/course%20notes/week%201.ipynb?kernel=python3"
    async with hub.client() as client:
        anonymous = await client.get(path)
        assert anonymous.status_code == 302
        login = anonymous.headers["location"]
        assert login.startswith("/hub/login?next=")
        next_url = httpx.URL(login).params["next"]
        assert next_url == path.replace("%20", " ") or next_url == path
        after = await log_in(client, "alice", next_url=next_url)
        assert after.status_code == 303
        assert httpx.URL(after.headers["location"]).path == httpx.URL(path).path
        response = await client.get(path)
    assert response.status_code == 302
    assert (
        response.headers["location"]
        == "/user/alice/lab/tree/course%20notes/week%201.ipynb?kernel=python3"
    )


async def raw_get(hub: HubUnderTest, target: str, cookies: httpx.Cookies) -> tuple[int, str]:
    """GET ``target`` exactly as written (httpx would resolve dot segments before sending):
    the status and the Location header."""
    url = httpx.URL(hub.url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
    writer.write(
        f"GET {target} HTTP/1.1\r\nHost: {url.netloc.decode()}\r\nCookie: {cookie}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    answer = (await reader.read()).decode("latin-1")
    writer.close()
    await writer.wait_closed()
    head = answer.split("\r\n\r\n", 1)[0].split("\r\n")
    location = next(
        (h.split(":", 1)[1].strip() for h in head if h.lower().startswith("location:")), ""
    )
    return int(head[0].split()[1]), location


@pytest.mark.parametrize("rest", ["..", "lab/../../hub/admin", "%2e%2E/hub/admin", "./x", "a/."])
async def test_user_redirect_does_not_climb_out_of_the_server(hub: HubUnderTest, rest: str) -> None:
    async with hub.client() as client:
        await log_in(client, "alice")
        status, location = await raw_get(hub, f"/hub/user-redirect/{rest}", client.cookies)
        # The same request without dots is redirected: the 404s are the dots' doing.
        fine = await raw_get(hub, "/hub/user-redirect/lab/x", client.cookies)
    assert (status, location) == (404, "")
    assert fine == (302, "/user/alice/lab/x")


@SUBDOMAINS
async def test_user_redirect_with_subdomains_ends_at_the_users_origin(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    async with subdomain_browser(hub, "alice") as client:
        seen = await open_server(client, "/hub/user-redirect/lab?x=1")
    assert seen[0].headers["location"] == "/user/alice/lab?x=1"
    assert str(seen[-1].url).startswith(hub.config.subdomain_host.replace("://", "://alice."))
    assert seen[-1].status_code == 200


async def test_spawn_pending_shows_progress_and_stop_then_goes_to_the_server(
    hub: HubUnderTest,
) -> None:
    hub.fake.add_session("alice", state="starting")
    async with hub.client() as client:
        anonymous = await client.get("/hub/spawn-pending/alice")
        await log_in(client, "alice")
        pending = await client.get("/hub/spawn-pending/alice")
        hub.fake.add_session("alice")  # now running
        ready = await client.get("/hub/spawn-pending/alice")
        hub.fake.sessions.pop("alice")
        stopped = await client.get("/hub/spawn-pending/alice")
        bad_name = await client.get("/hub/spawn-pending/-x")
    assert anonymous.status_code == 302 and anonymous.headers["location"].startswith("/hub/login")
    assert pending.status_code == 200
    assert 'data-progress-url="/hub/api/users/alice/server/progress"' in pending.text
    assert 'data-next="/user/alice/"' in pending.text
    assert 'id="stop"' in pending.text and "/hub/static/hub.js" in pending.text
    assert ready.status_code == 302 and ready.headers["location"] == "/user/alice/"
    assert stopped.status_code == 200 and 'id="start"' in stopped.text
    assert bad_name.status_code == 404
