"""The JSON API under /hub/api/: JupyterHub's statuses for start, stop and progress; tokens and
the browser's cookie with X-XSRFToken; who may act for whom."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from hostd.units.errors import CapacityExceeded, SpawnFailed
from tests.api.hub.conftest import HubUnderTest
from tests.api.hub.fake import log_in, xsrf_of


async def token_of(hub: HubUnderTest, user: str) -> str:
    """An API token of ``user``, made through the pages as a person would."""
    async with hub.client() as client:
        await log_in(client, user)
        page = await client.get("/hub/token")
        response = await client.post("/hub/token", data={"_xsrf": xsrf_of(page.text), "note": "t"})
    assert response.status_code == 200
    start = response.text.index('id="new-token">') + len('id="new-token">')
    return response.text[start : response.text.index("<", start)]


def api(hub: HubUnderTest, token: str) -> httpx.AsyncClient:
    return hub.client(headers={"Authorization": f"token {token}"})


def events(body: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]


async def test_start_ready_in_time_is_201_then_400_already_running(hub: HubUnderTest) -> None:
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        first = await client.post("/hub/api/users/alice/server")
        again = await client.post("/hub/api/users/alice/server")
        model = (await client.get("/hub/api/users/alice")).json()
    assert first.status_code == 201
    assert again.status_code == 400 and "already running" in again.json()["message"]
    assert again.json()["status"] == 400
    assert model["server"] == "/user/alice/" and model["pending"] is None
    assert model["servers"][""]["ready"] is True
    assert hub.fake.starts == 1
    assert [e.outcome for e in hub.store.spawn_events("alice")] == ["ready"]


async def test_a_slow_start_is_202_and_its_progress_ends_ready(hub: HubUnderTest) -> None:
    hub.fake.start_delay_s = 1.5
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        response = await client.post("/hub/api/users/alice/server")
        assert response.status_code == 202
        pending = await client.post("/hub/api/users/alice/server")
        assert pending.status_code == 400 and "pending spawn" in pending.json()["message"]
        assert (await client.get("/hub/api/users/alice")).json()["pending"] == "spawn"
        progress = await client.get("/hub/api/users/alice/server/progress")
    assert progress.status_code == 200
    assert progress.headers["content-type"].startswith("text/event-stream")
    seen = events(progress.text)
    assert seen[0]["progress"] == 0
    assert seen[-1] == {
        "progress": 100,
        "ready": True,
        "message": "Server ready at /user/alice/",
        "url": "/user/alice/",
    }
    assert all(0 <= e["progress"] <= 100 for e in seen)


async def test_progress_of_a_running_server_is_ready_at_once(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        progress = await client.get("/hub/api/users/alice/server/progress")
    assert events(progress.text) == [
        {
            "progress": 100,
            "ready": True,
            "message": "Server ready at /user/alice/",
            "url": "/user/alice/",
        }
    ]


async def test_a_failed_start_ends_its_progress_with_the_daemons_reason(hub: HubUnderTest) -> None:
    hub.fake.start_delay_s = 0.8
    hub.fake.start_error = SpawnFailed(
        "jupyter-alice.service exited with status 1", details={"log": ["No module named jupyter"]}
    )
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        assert (await client.post("/hub/api/users/alice/server")).status_code == 202
        progress = await client.get("/hub/api/users/alice/server/progress")
        # Asked again after the end: the failure is still told (JupyterHub does the same).
        again = await client.get("/hub/api/users/alice/server/progress")
    last = events(progress.text)[-1]
    assert last["failed"] is True and last["progress"] == 100
    assert "exited with status 1" in last["message"] and "No module named" in last["message"]
    assert events(again.text)[-1]["failed"] is True
    assert [e.outcome for e in hub.store.spawn_events("alice")] == ["failed"]


async def test_a_failure_inside_slow_spawn_timeout_is_a_500_with_the_reason(
    hub: HubUnderTest,
) -> None:
    hub.fake.start_error = SpawnFailed("the server did not answer in 60 s")
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        response = await client.post("/hub/api/users/alice/server")
    assert response.status_code == 500
    assert response.json()["message"] == "the server did not answer in 60 s"


async def test_progress_of_a_server_that_is_not_starting_is_400(hub: HubUnderTest) -> None:
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        response = await client.get("/hub/api/users/alice/server/progress")
    assert response.status_code == 400


async def test_no_capacity_is_429_with_retry_after(hub: HubUnderTest) -> None:
    hub.fake.fail["start"] = CapacityExceeded("memory is fully promised", retry_after_s=45)
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        response = await client.post("/hub/api/users/alice/server")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "45"
    assert response.json()["message"] == "memory is fully promised"


async def test_stop_is_204_or_202_while_it_takes_time(hub: HubUnderTest) -> None:
    hub.fake.add_session("alice")
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        stopped = await client.delete("/hub/api/users/alice/server")
        assert stopped.status_code == 204
        assert hub.fake.sessions["alice"].state == "stopped"
        nothing = await client.delete("/hub/api/users/alice/server")
        assert nothing.status_code == 204  # not running: nothing to do
        hub.fake.start_delay_s = 5
        assert (await client.post("/hub/api/users/alice/server")).status_code == 202
        hub.fake.stop_delay_s = 1.0
        slow = await client.delete("/hub/api/users/alice/server")
        assert slow.status_code == 202
        assert (await client.delete("/hub/api/users/alice/server")).status_code == 202
        assert (await client.get("/hub/api/users/alice")).json()["pending"] == "stop"
        progress = await client.get("/hub/api/users/alice/server/progress")
        assert progress.status_code == 400  # a stop has no progress
        await asyncio.sleep(1.2)
        model = (await client.get("/hub/api/users/alice")).json()
    assert model["pending"] is None and model["server"] is None
    assert hub.fake.sessions["alice"].state == "stopped"


async def test_a_user_may_act_only_for_themselves(hub: HubUnderTest) -> None:
    hub.fake.add_session("bob")
    token = await token_of(hub, "alice")
    await token_of(hub, "bob")
    async with api(hub, token) as client:
        for method, path in [
            ("POST", "/hub/api/users/bob/server"),
            ("DELETE", "/hub/api/users/bob/server"),
            ("GET", "/hub/api/users/bob/server/progress"),
            ("GET", "/hub/api/users/bob"),
            ("GET", "/hub/api/users/bob/tokens"),
            ("GET", "/hub/api/users"),
        ]:
            response = await client.request(method, path)
            assert response.status_code == 403, (method, path)
    assert hub.fake.sessions["bob"].state == "running"


async def test_an_admin_may_act_for_anyone(hub: HubUnderTest) -> None:
    await token_of(hub, "alice")
    token = await token_of(hub, "carol")
    async with api(hub, token) as client:
        assert (await client.post("/hub/api/users/alice/server")).status_code == 201
        users = (await client.get("/hub/api/users")).json()
        assert (await client.delete("/hub/api/users/alice/server")).status_code == 204
    assert {user["name"]: user["admin"] for user in users} == {"alice": False, "carol": True}
    assert [e.by for e in hub.store.spawn_events("alice")] == ["carol", "carol"]


async def test_without_credentials_everything_is_403(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        for method, path in [
            ("GET", "/hub/api/user"),
            ("GET", "/hub/api/users"),
            ("POST", "/hub/api/users/alice/server"),
            ("DELETE", "/hub/api/users/alice/server"),
            ("GET", "/hub/api/users/alice/server/progress"),
        ]:
            response = await client.request(method, path)
            assert response.status_code == 403, (method, path)
        bad = await client.get("/hub/api/user", headers={"Authorization": "token nope"})
        assert bad.status_code == 403
        info = await client.get("/hub/api")
    assert info.status_code == 200 and "version" in info.json()


async def test_the_browser_cookie_needs_the_xsrf_header_to_change_anything(
    hub: HubUnderTest,
) -> None:
    async with hub.client() as client, hub.client() as other:
        await log_in(client, "alice")
        await log_in(other, "bob")
        xsrf = xsrf_of((await client.get("/hub/home")).text)
        others = xsrf_of((await other.get("/hub/home")).text)
        assert (await client.get("/hub/api/user")).json()["name"] == "alice"
        no_header = await client.post("/hub/api/users/alice/server")
        wrong = await client.post("/hub/api/users/alice/server", headers={"X-XSRFToken": others})
        cross = await client.post(
            "/hub/api/users/alice/server",
            headers={"X-XSRFToken": xsrf, "Origin": "http://evil.example"},
        )
        assert (no_header.status_code, wrong.status_code, cross.status_code) == (403, 403, 403)
        assert hub.fake.starts == 0
        ok = await client.post("/hub/api/users/alice/server", headers={"X-XSRFToken": xsrf})
    assert ok.status_code == 201


async def test_tokens_through_the_api(hub: HubUnderTest) -> None:
    token = await token_of(hub, "alice")
    async with api(hub, token) as client:
        made = await client.post("/hub/api/users/alice/tokens", json={"note": "script"})
        assert made.status_code == 201
        new = made.json()
        listed = (await client.get("/hub/api/users/alice/tokens")).json()["api_tokens"]
        assert [t["note"] for t in listed] == ["t", "script"]
        assert all("token" not in t for t in listed)
        bad = await client.post("/hub/api/users/alice/tokens", json={"note": 5})
        assert bad.status_code == 400
        not_json = await client.post("/hub/api/users/alice/tokens", content=b"{nope")
        assert not_json.status_code == 400
    async with api(hub, new["token"]) as client:
        assert (await client.get("/hub/api/user")).json()["name"] == "alice"
        gone = await client.delete(f"/hub/api/users/alice/tokens/{new['id']}")
        assert gone.status_code == 204
        assert (await client.get("/hub/api/user")).status_code == 403
    async with api(hub, token) as client:
        missing = await client.delete(f"/hub/api/users/alice/tokens/{new['id']}")
    assert missing.status_code == 404


async def test_unknown_api_paths_are_json_404(hub: HubUnderTest) -> None:
    async with hub.client() as client:
        response = await client.get("/hub/api/nowhere")
    assert response.status_code == 404 and response.json()["status"] == 404


async def test_an_unknown_or_invalid_user_is_404(hub: HubUnderTest) -> None:
    token = await token_of(hub, "carol")
    async with api(hub, token) as client:
        assert (await client.get("/hub/api/users/nobody")).status_code == 404
        assert (await client.get("/hub/api/users/no%20body")).status_code == 404
        unknown = await client.post("/hub/api/users/nobody/server")
    assert unknown.status_code == 404  # the daemon knows no such account
