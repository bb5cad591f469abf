"""Named servers on the daemon's HTTP API: ``?server=`` on every per-session route, validated at
the boundary; a member acting for itself may not name another user's server; the stable codes."""

from __future__ import annotations

import pytest

from hostd.units.errors import TooManyServers
from tests.api.fake import ROOT, SELF_ONLY, FakeSessionService
from tests.api.test_daemon_app import HttpAs, assert_error


async def test_a_start_names_its_server_and_the_others_reach_it_by_key(
    http_as: HttpAs, fake: FakeSessionService
) -> None:
    async with http_as(ROOT) as client:
        started = await client.post("/v1/sessions/alice?server=lab")
        got = await client.get("/v1/sessions/alice", params={"server": "lab"})
        default = await client.post("/v1/sessions/alice")
    assert started.status_code == 201, started.text
    assert fake.server == ""  # the last start: the default server, asked as it always was
    assert got.status_code == 200
    assert ("get", "alice:lab") in fake.calls
    assert default.status_code in (200, 201)


@pytest.mark.parametrize(
    "server", ["../x", "a/b", "Lab", "lab.slice", "a:b", "-x", "x" * 33, "%2e%2e", "é"]
)
@pytest.mark.parametrize(
    ("method", "route"),
    [("POST", ""), ("GET", ""), ("DELETE", ""), ("GET", "/token"), ("GET", "/logs")],
)
async def test_a_bad_server_name_is_422_before_the_service(
    http_as: HttpAs, fake: FakeSessionService, server: str, method: str, route: str
) -> None:
    async with http_as(ROOT) as client:
        response = await client.request(
            method, f"/v1/sessions/alice{route}", params={"server": server}
        )
    assert_error(response, 422, "invalid-server-name")
    assert not [call for call in fake.calls if call[0] != "authorize"]


async def test_a_member_may_not_name_another_users_server(
    http_as: HttpAs, fake: FakeSessionService
) -> None:
    async with http_as(SELF_ONLY) as client:  # carol, acting only for herself
        for method, route in (("POST", ""), ("DELETE", ""), ("GET", "/token")):
            response = await client.request(
                method, f"/v1/sessions/alice{route}", params={"server": "lab"}
            )
            assert_error(response, 403, "forbidden")
        # Nor a key in the path, the daemon's own name of alice's server.
        response = await client.get("/v1/sessions/alice:lab/token")
        assert_error(response, 403, "forbidden")
    assert not [call for call in fake.calls if call[0] in ("start", "stop", "token")]


async def test_too_many_servers_is_409_with_its_code(
    http_as: HttpAs, fake: FakeSessionService
) -> None:
    fake.fail["start"] = TooManyServers("alice already runs 2 named servers")
    async with http_as(ROOT) as client:
        response = await client.post("/v1/sessions/alice?server=three")
    assert_error(response, 409, "too-many-servers")
