"""The daemon's HTTP API over a fake SessionService, through httpx's ASGI transport."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from hostd.api.wire import MAX_BODY_BYTES, policy_from_dict, policy_to_dict
from hostd.units import SessionPolicy
from hostd.units.choices import ProfileView
from hostd.units.errors import (
    CapacityExceeded,
    ConfigError,
    HostdError,
    InvalidName,
    PermissionDenied,
    SessionConflict,
    SessionNotFound,
    SpawnFailed,
    SystemdUnavailable,
    UnknownUser,
    UserRefused,
)
from hostd.units.values import Caller, PeerCredentials, UsageView
from tests.api.fake import (
    DEFAULT_HISTORY_POINTS,
    MEMBER,
    MEMBER_UID,
    SELF_ONLY,
    STRANGER,
    FakeSessionService,
)

ROUTES = [
    ("GET", "/v1/sessions"),
    ("GET", "/v1/sessions/alice"),
    ("POST", "/v1/sessions/alice"),
    ("DELETE", "/v1/sessions/alice"),
    ("GET", "/v1/sessions/alice/logs"),
    ("GET", "/v1/sessions/alice/logs?follow=1"),
    ("PATCH", "/v1/sessions/alice"),
    ("GET", "/v1/sessions/alice/usage"),
    ("GET", "/v1/sessions/alice/usage/history"),
    ("POST", "/v1/sessions/alice/activity"),
    ("GET", "/v1/host"),
    ("GET", "/v1/host/history"),
    ("GET", "/v1/health"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
]

HttpAs = Callable[[PeerCredentials | None], httpx.AsyncClient]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, object] = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"code", "message", "details"}
    return body


# -- authorisation ------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("peer", [None, STRANGER], ids=["no-peer", "stranger"])
async def test_every_route_refuses_a_peer_the_service_refuses(
    http_as: HttpAs,
    fake: FakeSessionService,
    method: str,
    path: str,
    peer: PeerCredentials | None,
) -> None:
    fake.add_session("alice")
    async with http_as(peer) as client:
        response = await client.request(method, path)
    assert_error(response, 403, "forbidden")
    assert [call[0] for call in fake.calls] == ["authorize"]


async def test_unknown_routes_are_authorised_too(http_as: HttpAs) -> None:
    async with http_as(None) as client:
        response = await client.get("/nowhere")
    assert_error(response, 403, "forbidden")


async def test_the_caller_reaches_the_service(http_as: HttpAs, fake: FakeSessionService) -> None:
    async with http_as(MEMBER) as client:
        response = await client.post("/v1/sessions/alice")
    assert response.status_code == 201
    assert fake.calls[0] == ("authorize", MEMBER)
    start = fake.calls[1]
    assert start[3] == Caller(
        uid=MEMBER_UID, name=f"uid{MEMBER_UID}", privileged=False, acts_for_others=True
    )


async def test_root_is_a_privileged_caller(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.add_session("alice")
    response = await http.delete("/v1/sessions/alice")
    assert response.status_code == 200
    root = Caller(uid=0, name="root", privileged=True, acts_for_others=True)
    assert fake.calls[-2] == ("stop", "alice", root)


async def test_an_unexpected_failure_of_authorize_is_internal(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.fail["authorize"] = KeyError("boom")
    assert_error(await http.get("/v1/health"), 500, "internal")


# -- start --------------------------------------------------------------------------------


async def test_start_creates_then_reports_the_running_session(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    first = await http.post("/v1/sessions/alice")
    assert first.status_code == 201
    assert first.json() == fake.sessions["alice"].to_dict()
    assert first.json()["state"] == "running"
    again = await http.post("/v1/sessions/alice")
    assert again.status_code == 200
    assert again.json() == first.json()


async def test_start_builds_the_session_request_from_the_body(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    body = {
        "mem_limit": "2G",
        "cpu_limit": 1.5,
        "environment": {"JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api"},
        "default_url": "/lab",
    }
    response = await http.post("/v1/sessions/alice", json=body)
    assert response.status_code == 201
    _, user, request, _, wait = fake.calls[-1]
    assert user == "alice"
    assert wait is True
    assert request.mem_limit == 2 * 1024**3
    assert request.cpu_limit == 1.5
    assert dict(request.environment) == body["environment"]
    assert request.default_url == "/lab"
    assert response.json()["limits"] == {"mem_limit_bytes": 2 * 1024**3, "cpu_limit": 1.5}


@pytest.mark.parametrize(
    "content", [b"", b"  \n", b"{}", b'{"mem_limit": null, "environment": null}']
)
async def test_start_takes_defaults_from_an_empty_body_or_nulls(
    http: httpx.AsyncClient, fake: FakeSessionService, content: bytes
) -> None:
    response = await http.post("/v1/sessions/alice", content=content)
    assert response.status_code == 201
    request = fake.calls[-1][2]
    assert (request.mem_limit, request.cpu_limit, request.default_url) == (None, None, None)
    assert dict(request.environment) == {}


@pytest.mark.parametrize(
    ("query", "wait"),
    [
        ("", True),
        ("?wait=1", True),
        ("?wait=true", True),
        ("?wait=0", False),
        ("?wait=FALSE", False),
    ],
)
async def test_start_passes_wait(
    http: httpx.AsyncClient, fake: FakeSessionService, query: str, wait: bool
) -> None:
    response = await http.post(f"/v1/sessions/alice{query}")
    assert response.status_code == 201
    assert fake.calls[-1][4] is wait
    assert response.json()["state"] == ("running" if wait else "starting")


async def test_start_refuses_a_wait_that_is_not_a_boolean(http: httpx.AsyncClient) -> None:
    body = assert_error(await http.post("/v1/sessions/alice?wait=maybe"), 422, "invalid-option")
    assert "wait" in str(body["message"])


async def test_start_refuses_an_unknown_option_naming_it_and_the_allowed(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    response = await http.post("/v1/sessions/alice", json={"mem_limit": "1G", "memory": "1G"})
    body = assert_error(response, 422, "invalid-option")
    message = str(body["message"])
    assert "'memory'" in message
    for allowed in ("mem_limit", "cpu_limit", "environment", "default_url"):
        assert allowed in message
    assert not any(call[0] == "start" for call in fake.calls)


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"mem_limit": "lots"}, "invalid-size", "mem_limit"),
        ({"mem_limit": True}, "invalid-size", "mem_limit"),
        ({"cpu_limit": 0}, "invalid-size", "cpu_limit"),
        ({"environment": {"API_TOKEN": "x"}}, "invalid-option", "environment"),
        ({"environment": ["A=B"]}, "invalid-option", "environment"),
        ({"default_url": "//evil.example"}, "invalid-option", "default_url"),
    ],
)
async def test_start_refuses_values_the_request_does_not_validate(
    http: httpx.AsyncClient, body: dict[str, object], code: str, field: str
) -> None:
    error = assert_error(await http.post("/v1/sessions/alice", json=body), 422, code)
    assert str(error["message"]).startswith(f"{field}: ")


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"mem_limit=1G",
        b"\xff\xfe\xfa",
        b"[" * 50_000,  # nested too deep for the parser: still a 400, not a 500
    ],
    ids=["truncated", "form", "not-utf8", "deep"],
)
async def test_start_refuses_a_body_that_is_not_json(
    http: httpx.AsyncClient, fake: FakeSessionService, content: bytes
) -> None:
    body = assert_error(await http.post("/v1/sessions/alice", content=content), 400, "bad-request")
    assert "not JSON" in str(body["message"])
    assert not any(call[0] == "start" for call in fake.calls)


@pytest.mark.parametrize("content", [b"[]", b'"alice"', b"1", b"null"])
async def test_start_refuses_a_body_that_is_not_an_object(
    http: httpx.AsyncClient, content: bytes
) -> None:
    body = assert_error(await http.post("/v1/sessions/alice", content=content), 400, "bad-request")
    assert "JSON object" in str(body["message"])


async def test_start_refuses_a_body_over_the_limit(http: httpx.AsyncClient) -> None:
    big = json.dumps({"environment": {"JUPYTERHUB_X": "x" * MAX_BODY_BYTES}}).encode()
    body = assert_error(await http.post("/v1/sessions/alice", content=big), 400, "bad-request")
    assert str(MAX_BODY_BYTES) in str(body["message"])


async def test_start_refuses_a_chunked_body_over_the_limit(http: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds while reading
        for _ in range(5):
            yield b" " * (MAX_BODY_BYTES // 4)

    response = await http.post("/v1/sessions/alice", content=chunks())
    assert "content-length" not in response.request.headers
    assert_error(response, 400, "bad-request")


async def test_start_takes_a_body_at_the_limit(http: httpx.AsyncClient) -> None:
    content = b"{}".ljust(MAX_BODY_BYTES)
    assert (await http.post("/v1/sessions/alice", content=content)).status_code == 201


# -- stop, get, list ----------------------------------------------------------------------


async def test_stop_answers_the_final_view(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.add_session("alice")
    response = await http.delete("/v1/sessions/alice")
    assert response.status_code == 200
    assert response.json()["state"] == "stopped"
    assert response.json() == fake.sessions["alice"].to_dict()


async def test_get_answers_the_view(http: httpx.AsyncClient, fake: FakeSessionService) -> None:
    view = fake.add_session("alice")
    response = await http.get("/v1/sessions/alice")
    assert response.status_code == 200
    assert response.json() == view.to_dict()


async def test_get_of_a_user_without_session_is_404(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/v1/sessions/alice"), 404, "not-found")


async def test_get_of_an_invalid_name_is_422(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/v1/sessions/-x"), 422, "invalid-name")


async def test_list_answers_every_session(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    assert (await http.get("/v1/sessions")).json() == {"sessions": []}
    views = [fake.add_session("bob"), fake.add_session("alice", state="failed", result="oom-kill")]
    response = await http.get("/v1/sessions")
    assert response.status_code == 200
    assert response.json() == {"sessions": [views[1].to_dict(), views[0].to_dict()]}


# -- logs ---------------------------------------------------------------------------------


async def test_logs_answers_the_last_lines(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.add_session("alice", lines=150)
    response = await http.get("/v1/sessions/alice/logs")
    assert response.status_code == 200
    lines = response.json()["lines"]
    assert len(lines) == 100
    assert fake.calls[-2] == ("logs", "alice", 100)
    assert lines[-1] == fake.journal["alice"][-1].to_dict()
    few = (await http.get("/v1/sessions/alice/logs?lines=2")).json()["lines"]
    assert few == [line.to_dict() for line in fake.journal["alice"][-2:]]


@pytest.mark.parametrize("lines", ["0", "10001", "-1", "x", "1.5", "+5", " 5", "1_0", ""])
async def test_logs_refuses_lines_out_of_range(
    http: httpx.AsyncClient, fake: FakeSessionService, lines: str
) -> None:
    fake.add_session("alice")
    response = await http.get("/v1/sessions/alice/logs", params={"lines": lines})
    body = assert_error(response, 422, "invalid-option")
    assert "lines" in str(body["message"])


@pytest.mark.parametrize("lines", ["1", "10000"])
async def test_logs_takes_the_bounds(
    http: httpx.AsyncClient, fake: FakeSessionService, lines: str
) -> None:
    fake.add_session("alice")
    response = await http.get("/v1/sessions/alice/logs", params={"lines": lines})
    assert response.status_code == 200


async def test_logs_of_a_user_without_session_is_404(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/v1/sessions/alice/logs"), 404, "not-found")


def ndjson(response: httpx.Response) -> list[dict[str, object]]:
    assert response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


async def test_follow_streams_ndjson(http: httpx.AsyncClient, fake: FakeSessionService) -> None:
    fake.add_session("alice", lines=3)
    response = await http.get("/v1/sessions/alice/logs?follow=1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert ndjson(response) == [line.to_dict() for line in fake.journal["alice"]]
    assert fake.followers_closed == fake.followers_open == 1


async def test_follow_starts_after_the_cursor(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.add_session("alice", lines=3)
    response = await http.get(
        "/v1/sessions/alice/logs", params={"follow": "true", "cursor": "alice-0"}
    )
    assert [line["cursor"] for line in ndjson(response)] == ["alice-1", "alice-2"]
    assert fake.calls[-1] == ("get", "alice")
    assert ("follow", "alice", "alice-0") in fake.calls


async def test_follow_of_an_empty_log_is_an_empty_stream(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.add_session("alice", lines=0)
    response = await http.get("/v1/sessions/alice/logs?follow=1")
    assert response.status_code == 200
    assert response.content == b""


async def test_follow_error_before_the_first_line_is_a_json_error(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    response = await http.get("/v1/sessions/alice/logs?follow=1")
    assert_error(response, 404, "not-found")
    assert fake.followers_closed == 1


async def test_follow_error_after_the_stream_began_is_its_last_line(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.add_session("alice", lines=2)
    fake.follow_error = SystemdUnavailable("journal went away")
    lines = ndjson(await http.get("/v1/sessions/alice/logs?follow=1"))
    assert len(lines) == 3
    assert lines[-1] == {"error": {"code": "systemd-unavailable", "message": "journal went away"}}


async def test_follow_whose_first_line_is_slow_streams_its_error_as_a_line(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.follow_delay_s = 0.4  # longer than the app's first_line_wait_s
    response = await http.get("/v1/sessions/alice/logs?follow=1")
    assert response.status_code == 200
    assert ndjson(response) == [{"error": {"code": "not-found", "message": "alice has no session"}}]


async def test_follow_unexpected_error_mid_stream_is_internal_and_logged(
    http: httpx.AsyncClient, fake: FakeSessionService, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_session("alice", lines=1)
    fake.follow_error = RuntimeError("secret internals")
    with caplog.at_level(logging.ERROR, logger="hostd.api.daemon"):
        response = await http.get("/v1/sessions/alice/logs?follow=1")
    last = ndjson(response)[-1]
    assert last == {
        "error": {"code": "internal", "message": "internal error; see the daemon's journal"}
    }
    assert "secret internals" not in response.text
    assert any(record.exc_info for record in caplog.records)


async def test_follow_refuses_a_bad_follow_flag(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/v1/sessions/alice/logs?follow=yes"), 422, "invalid-option")


# -- health, openapi ----------------------------------------------------------------------


async def test_health_answers_the_service_report(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.add_session("alice")
    response = await http.get("/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "sessions": 1}


async def test_health_when_systemd_does_not_answer_is_503(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.fail["health"] = SystemdUnavailable("no answer from systemd in 5 s")
    assert_error(await http.get("/v1/health"), 503, "systemd-unavailable")


async def test_openapi_is_served(http: httpx.AsyncClient) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    assert response.json()["openapi"] == "3.1.0"


# -- usage, host, limits, activity, metrics -----------------------------------------------


async def test_usage_answers_the_view(http: httpx.AsyncClient, fake: FakeSessionService) -> None:
    fake.add_session("alice")
    usage = UsageView(user="alice", memory_bytes=432_332_390, cpu_percent=37.0, tasks=4)
    fake.usages["alice"] = usage
    response = await http.get("/v1/sessions/alice/usage")
    assert response.status_code == 200
    assert response.json() == usage.to_dict()
    assert ("usage", "alice") in fake.calls


@pytest.mark.parametrize("state", ["stopped", "failed", None])
async def test_usage_of_a_session_that_is_not_running_is_404(
    http: httpx.AsyncClient, fake: FakeSessionService, state: str | None
) -> None:
    if state is not None:
        fake.add_session("alice", state=state)
    assert_error(await http.get("/v1/sessions/alice/usage"), 404, "not-found")


async def test_usage_of_an_invalid_name_is_422(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/v1/sessions/-x/usage"), 422, "invalid-name")


# -- usage over time ------------------------------------------------------------------------


async def test_usage_history_answers_the_view_of_the_window(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.add_session("alice")
    hour = await http.get("/v1/sessions/alice/usage/history")
    day = await http.get("/v1/sessions/alice/usage/history", params={"window": "24h"})
    assert hour.status_code == day.status_code == 200
    assert (hour.json()["window"], hour.json()["resolution_s"]) == ("1h", 10)
    assert (day.json()["window"], day.json()["resolution_s"]) == ("24h", 300)
    assert len(hour.json()["points"]) == DEFAULT_HISTORY_POINTS
    assert ("usage_history", "alice", "1h") in fake.calls
    assert ("usage_history", "alice", "24h") in fake.calls


@pytest.mark.parametrize("window", ["1y", "", "1H", "3600", "x" * 100])
async def test_usage_history_of_an_unknown_window_is_422_and_says_which_are_known(
    http: httpx.AsyncClient, fake: FakeSessionService, window: str
) -> None:
    fake.add_session("alice")
    for path in ("/v1/sessions/alice/usage/history", "/v1/host/history"):
        body = assert_error(await http.get(path, params={"window": window}), 422, "invalid-option")
        assert "1h, 24h" in str(body["message"])
        assert len(str(body["message"])) < 100
    assert not {call[0] for call in fake.calls} & {"usage_history", "host_history"}


@pytest.mark.parametrize("state", ["stopped", "failed", None])
async def test_usage_history_of_a_session_that_is_not_running_is_404(
    http: httpx.AsyncClient, fake: FakeSessionService, state: str | None
) -> None:
    if state is not None:
        fake.add_session("alice", state=state)
    assert_error(await http.get("/v1/sessions/alice/usage/history"), 404, "not-found")


async def test_usage_history_of_an_invalid_name_is_422(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/v1/sessions/-x/usage/history"), 422, "invalid-name")


async def test_usage_history_of_an_unknown_user_is_404(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/v1/sessions/zed/usage/history"), 404, "unknown-user")


async def test_a_member_reads_its_own_usage_history_and_the_hosts(
    http_as: HttpAs, fake: FakeSessionService
) -> None:
    fake.add_session("carol")
    async with http_as(SELF_ONLY) as carol:
        own = await carol.get("/v1/sessions/carol/usage/history")
        host = await carol.get("/v1/host/history", params={"window": "24h"})
    assert own.status_code == host.status_code == 200, own.text + host.text
    assert own.json()["user"] == "carol"
    assert host.json()["window"] == "24h" and host.json()["points"]


async def test_the_hub_reads_anyones_usage_history(
    http_as: HttpAs, fake: FakeSessionService
) -> None:
    fake.add_session("alice")
    async with http_as(MEMBER) as hub:
        response = await hub.get("/v1/sessions/alice/usage/history")
    assert response.status_code == 200 and response.json()["user"] == "alice"


async def test_host_answers_the_view(http: httpx.AsyncClient, fake: FakeSessionService) -> None:
    fake.add_session("alice")
    response = await http.get("/v1/host")
    assert response.status_code == 200
    assert response.json() == (await fake.host()).to_dict()
    assert response.json()["sessions_running"] == 1


async def test_policy_answers_the_sandbox_to_any_member_and_no_secret(
    http_as: Callable[[PeerCredentials | None], httpx.AsyncClient], fake: FakeSessionService
) -> None:
    fake.session_policy = SessionPolicy(
        cmd=("/bin/true",),
        isolate_tmp=True,
        readonly_paths=("/srv",),
        environment={"SITE_NAME": "admin-only"},  # the admin's: never shown
        unit_extra_properties={"TasksMax": 512},
        mem_limit=1024**3,
        max_mem_limit=2 * 1024**3,
    )
    fake.commands = ("singleuser", "lab")
    async with http_as(MEMBER) as client:
        response = await client.get("/v1/policy")
    assert response.status_code == 200
    body = response.json()
    assert body == policy_to_dict(await fake.policy())
    assert (body["isolate_tmp"], body["readonly_paths"]) == (True, ["/srv"])
    assert body["unit_extra_properties"] == {"TasksMax": 512}
    assert body["commands"] == ["lab", "singleuser"]
    assert (body["mem_limit_bytes"], body["max_mem_limit_bytes"]) == (1024**3, 2 * 1024**3)
    assert "admin-only" not in response.text and "/bin/true" not in response.text
    assert policy_from_dict(body) == await fake.policy()


async def test_metrics_are_the_service_text_with_its_content_type(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.add_session("alice")
    body, content_type = await fake.metrics()
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.content == body
    assert "hostd_sessions 1.0" in response.text


async def test_metrics_as_prometheus_client_renders_them(
    http: httpx.AsyncClient, fake: FakeSessionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    Gauge("hostd_sessions", "Sessions.", registry=registry).set(3)

    async def metrics() -> tuple[bytes, str]:
        return generate_latest(registry), CONTENT_TYPE_LATEST

    monkeypatch.setattr(fake, "metrics", metrics)
    response = await http.get("/metrics")
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST  # no second charset
    assert "hostd_sessions 3.0" in response.text


@pytest.mark.parametrize(
    ("body", "mem_limit", "cpu_limit"),
    [
        ({"mem_limit": "1G"}, 1024**3, None),
        ({"mem_limit": 4096, "cpu_limit": None}, 4096, None),
        ({"cpu_limit": 0.5}, None, 0.5),
        ({"cpu_limit": "2"}, None, 2.0),
        ({"mem_limit": " 512m ", "cpu_limit": 3}, 512 * 1024**2, 3.0),
    ],
)
async def test_patch_sets_the_limits_given(
    http: httpx.AsyncClient,
    fake: FakeSessionService,
    body: dict[str, object],
    mem_limit: int | None,
    cpu_limit: float | None,
) -> None:
    fake.add_session("alice")  # 2G and 1.5 cores
    response = await http.patch("/v1/sessions/alice", json=body)
    assert response.status_code == 200, response.text
    root = Caller(uid=0, name="root", privileged=True, acts_for_others=True)
    assert fake.calls[-1] == ("set_limits", "alice", mem_limit, cpu_limit, root)
    assert response.json() == fake.sessions["alice"].to_dict()
    assert response.json()["limits"] == {
        "mem_limit_bytes": 2 * 1024**3 if mem_limit is None else mem_limit,
        "cpu_limit": 1.5 if cpu_limit is None else cpu_limit,
    }


@pytest.mark.parametrize(
    ("body", "code", "start"),
    [
        ({"mem_limit": "lots"}, "invalid-size", "mem_limit: invalid size 'lots'"),
        ({"mem_limit": 0}, "invalid-size", "mem_limit: invalid size 0"),
        ({"mem_limit": True}, "invalid-size", "mem_limit: invalid size True"),
        ({"mem_limit": 1.5}, "invalid-size", "mem_limit: invalid size 1.5"),
        ({"cpu_limit": 0}, "invalid-size", "cpu_limit: invalid CPU limit 0"),
        ({"cpu_limit": "many"}, "invalid-size", "cpu_limit: invalid CPU limit 'many'"),
        ({"mem_limit": "1G", "memory": "2G"}, "invalid-option", "unknown option 'memory'"),
        ({"environment": {}}, "invalid-option", "unknown option 'environment'"),
        ({}, "invalid-option", "nothing to change"),
        ({"mem_limit": None, "cpu_limit": None}, "invalid-option", "nothing to change"),
    ],
)
async def test_patch_refuses_what_does_not_validate(
    http: httpx.AsyncClient,
    fake: FakeSessionService,
    body: dict[str, object],
    code: str,
    start: str,
) -> None:
    fake.add_session("alice")
    error = assert_error(await http.patch("/v1/sessions/alice", json=body), 422, code)
    assert str(error["message"]).startswith(start)
    assert not any(call[0] == "set_limits" for call in fake.calls)


async def test_patch_without_a_body_is_422(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.add_session("alice")
    assert_error(await http.patch("/v1/sessions/alice"), 422, "invalid-option")


@pytest.mark.parametrize("content", [b"[]", b"{", b'"1G"'])
async def test_patch_refuses_a_body_that_is_not_an_object(
    http: httpx.AsyncClient, fake: FakeSessionService, content: bytes
) -> None:
    fake.add_session("alice")
    response = await http.patch("/v1/sessions/alice", content=content)
    assert_error(response, 400, "bad-request")


async def test_patch_by_a_caller_who_is_not_root_is_403(
    http_as: HttpAs, fake: FakeSessionService
) -> None:
    fake.add_session("alice")
    before = fake.sessions["alice"]
    async with http_as(MEMBER) as client:
        response = await client.patch("/v1/sessions/alice", json={"mem_limit": "8G"})
    assert_error(response, 403, "forbidden")
    member = Caller(uid=MEMBER_UID, name=f"uid{MEMBER_UID}", privileged=False, acts_for_others=True)
    assert fake.calls[-1] == ("set_limits", "alice", 8 * 1024**3, None, member)
    assert fake.sessions["alice"] == before


@pytest.mark.parametrize("state", ["stopped", None])
async def test_patch_of_a_session_that_is_not_running_is_404(
    http: httpx.AsyncClient, fake: FakeSessionService, state: str | None
) -> None:
    if state is not None:
        fake.add_session("alice", state=state)
    response = await http.patch("/v1/sessions/alice", json={"cpu_limit": 1})
    assert_error(response, 404, "not-found")


@pytest.mark.parametrize("content", [b"", b"{}", b" \n"])
async def test_activity_answers_204_without_a_body(
    http_as: HttpAs, fake: FakeSessionService, content: bytes
) -> None:
    fake.add_session("alice")
    async with http_as(MEMBER) as client:
        response = await client.post("/v1/sessions/alice/activity", content=content)
    assert response.status_code == 204
    assert response.content == b""
    member = Caller(uid=MEMBER_UID, name=f"uid{MEMBER_UID}", privileged=False, acts_for_others=True)
    assert fake.calls[-1] == ("activity", "alice", member)


async def test_activity_refuses_options(http: httpx.AsyncClient, fake: FakeSessionService) -> None:
    fake.add_session("alice")
    response = await http.post("/v1/sessions/alice/activity", json={"at": "now"})
    body = assert_error(response, 422, "invalid-option")
    assert body["message"] == "unknown option 'at'; allowed: none"
    assert_error(await http.post("/v1/sessions/alice/activity", content=b"[]"), 400, "bad-request")
    assert not any(call[0] == "activity" for call in fake.calls)


async def test_activity_of_a_session_that_is_not_running_is_404(http: httpx.AsyncClient) -> None:
    assert_error(await http.post("/v1/sessions/alice/activity"), 404, "not-found")


# -- HTTP-level errors --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/v2/sessions", "/v1/sessions/alice/log", "/v1/sessions/"])
async def test_unknown_route_is_404_json(http: httpx.AsyncClient, path: str) -> None:
    body = assert_error(await http.get(path), 404, "not-found")
    assert path in str(body["message"])


async def test_an_encoded_slash_in_a_user_is_refused(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.add_session("alice")
    # Decoded, this is /v1/sessions/alice/logs: it must not answer alice's logs.
    assert_error(await http.get("/v1/sessions/alice%2Flogs"), 404, "not-found")
    assert_error(await http.get("/v1/sessions/a%2fb/logs"), 404, "not-found")
    assert not any(call[0] in ("get", "logs") for call in fake.calls)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/sessions/alice", {"GET", "HEAD", "POST", "PATCH", "DELETE"}),
        ("POST", "/v1/sessions", {"GET", "HEAD"}),
        ("DELETE", "/v1/health", {"GET", "HEAD"}),
        ("POST", "/openapi.json", {"GET", "HEAD"}),
        ("POST", "/v1/sessions/alice/usage", {"GET", "HEAD"}),
        ("GET", "/v1/sessions/alice/activity", {"POST"}),
        ("PATCH", "/v1/host", {"GET", "HEAD"}),
        ("POST", "/metrics", {"GET", "HEAD"}),
    ],
)
async def test_wrong_method_is_405_json(
    http: httpx.AsyncClient, method: str, path: str, allow: set[str]
) -> None:
    body = assert_error(await http.request(method, path), 405, "method-not-allowed")
    assert method in str(body["message"])
    response = await http.request(method, path)
    assert set(response.headers["allow"].split(", ")) == allow


async def test_unexpected_exception_is_500_without_traceback_and_logged(
    http: httpx.AsyncClient, fake: FakeSessionService, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail["list"] = ZeroDivisionError("the fake divided by zero")
    with caplog.at_level(logging.ERROR, logger="hostd.api.daemon"):
        response = await http.get("/v1/sessions")
    body = assert_error(response, 500, "internal")
    assert body == {"code": "internal", "message": "internal error; see the daemon's journal"}
    assert "Traceback" not in response.text and "divided" not in response.text
    [record] = [r for r in caplog.records if r.name == "hostd.api.daemon"]
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
    assert "GET /v1/sessions" in record.getMessage()


# -- every domain error, every status -----------------------------------------------------

DOMAIN_ERRORS = [
    (InvalidName("invalid user name"), 422, "invalid-name"),
    (PermissionDenied("not in group hostd"), 403, "forbidden"),
    (UserRefused("root may not have a session"), 403, "user-refused"),
    (UnknownUser("no account named zed"), 404, "unknown-user"),
    (SessionNotFound("alice has no session"), 404, "not-found"),
    (SessionConflict("alice's session is stopping"), 409, "conflict"),
    (CapacityExceeded("memory is committed", retry_after_s=45), 429, "capacity"),
    (SpawnFailed("it failed", details={"result": "exit-code"}), 502, "spawn-failed"),
    (SystemdUnavailable("no answer"), 503, "systemd-unavailable"),
    (ConfigError([("mem_limit", "invalid size")]), 500, "invalid-config"),
    (HostdError("a new kind of error"), 500, "error"),
]


@pytest.mark.parametrize(("error", "status", "code"), DOMAIN_ERRORS, ids=lambda v: str(v))
@pytest.mark.parametrize(
    ("method", "path", "service_method"),
    [
        ("POST", "/v1/sessions/alice", "start"),
        ("DELETE", "/v1/sessions/alice", "stop"),
        ("GET", "/v1/sessions/alice", "get"),
        ("GET", "/v1/sessions", "list"),
        ("GET", "/v1/sessions/alice/logs", "logs"),
        ("GET", "/v1/sessions/alice/logs?follow=1", "follow"),
        ("PATCH", "/v1/sessions/alice", "set_limits"),
        ("GET", "/v1/sessions/alice/usage", "usage"),
        ("POST", "/v1/sessions/alice/activity", "activity"),
        ("GET", "/v1/host", "host"),
        ("GET", "/v1/health", "health"),
        ("GET", "/metrics", "metrics"),
    ],
)
async def test_each_domain_error_has_its_status_on_each_route(
    http: httpx.AsyncClient,
    fake: FakeSessionService,
    error: HostdError,
    status: int,
    code: str,
    method: str,
    path: str,
    service_method: str,
) -> None:
    fake.add_session("alice")
    fake.fail[service_method] = error
    content = b'{"cpu_limit": 1}' if method == "PATCH" else None
    body = assert_error(await http.request(method, path, content=content), status, code)
    assert body["message"] == error.message
    assert body.get("details", {}) == error.details


async def test_capacity_answers_retry_after(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.fail["start"] = CapacityExceeded("memory is committed", retry_after_s=45)
    response = await http.post("/v1/sessions/alice")
    body = assert_error(response, 429, "capacity")
    assert response.headers["retry-after"] == "45"
    assert body["details"] == {"retry_after_s": 45}


async def test_spawn_failed_carries_its_evidence(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    details = {"result": "exit-code", "exit_status": 1, "log": ["jupyter: command not found"]}
    fake.fail["start"] = SpawnFailed("alice's session failed to start", details=details)
    body = assert_error(await http.post("/v1/sessions/alice"), 502, "spawn-failed")
    assert body["details"] == details


async def test_unknown_user_on_start_is_404(http: httpx.AsyncClient) -> None:
    assert_error(await http.post("/v1/sessions/zed"), 404, "unknown-user")


async def test_start_passes_the_named_command_and_secrets_to_the_service(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    body = {"command": "singleuser", "secrets": {"JUPYTERHUB_API_TOKEN": "t0k"}}
    response = await http.post("/v1/sessions/alice", json=body)
    assert response.status_code == 201
    assert fake.extras == ("singleuser", {"JUPYTERHUB_API_TOKEN": "t0k"})


@pytest.mark.parametrize(
    "body",
    [{"command": 7}, {"secrets": ["JUPYTERHUB_API_TOKEN"]}, {"secrets": {"TOKEN": 1}}],
)
async def test_start_refuses_malformed_command_or_secrets(
    http: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await http.post("/v1/sessions/alice", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid-option"


async def test_token_of_a_running_session_and_404_otherwise(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    assert (await http.get("/v1/sessions/alice/token")).status_code == 404
    await http.post("/v1/sessions/alice")
    response = await http.get("/v1/sessions/alice/token")
    assert (response.status_code, response.json()) == (200, {"token": "token-of-alice"})


# -- a member of the socket's group acts only for itself (the attacker is carol) -------------

OTHERS_ROUTES = [
    ("GET", "/v1/sessions/alice"),
    ("POST", "/v1/sessions/alice"),
    ("DELETE", "/v1/sessions/alice"),
    ("PATCH", "/v1/sessions/alice"),
    ("GET", "/v1/sessions/alice/logs"),
    ("GET", "/v1/sessions/alice/logs?follow=1"),
    ("GET", "/v1/sessions/alice/token"),
    ("GET", "/v1/sessions/alice/usage"),
    ("GET", "/v1/sessions/alice/usage/history"),
    ("GET", "/v1/sessions/alice/usage/history?window=24h"),
    ("POST", "/v1/sessions/alice/activity"),
    ("POST", "/v1/auth"),
    ("GET", "/metrics"),
    ("GET", "/v1/accounts/alice"),
]


@pytest.mark.parametrize(("method", "path"), OTHERS_ROUTES)
async def test_a_member_who_is_not_the_hub_cannot_act_for_another_user(
    http_as: HttpAs, fake: FakeSessionService, method: str, path: str
) -> None:
    fake.add_session("alice")
    async with http_as(SELF_ONLY) as carol:
        response = await carol.request(method, path, json={} if method != "GET" else None)
    body = assert_error(response, 403, "forbidden")
    assert "carol" in str(body["message"])
    called = {call[0] for call in fake.calls} - {"authorize"}
    assert not called, f"the service was asked {called} for carol"


async def test_a_member_acts_for_itself_and_sees_only_its_own_session(
    http_as: HttpAs, fake: FakeSessionService
) -> None:
    fake.add_session("alice")
    async with http_as(SELF_ONLY) as carol:
        started = await carol.post("/v1/sessions/carol", json={})
        own = await carol.get("/v1/sessions/carol")
        token = await carol.get("/v1/sessions/carol/token")
        listed = await carol.get("/v1/sessions")
        stopped = await carol.delete("/v1/sessions/carol")
    assert started.status_code == 201 and own.status_code == token.status_code == 200
    assert [s["user"] for s in listed.json()["sessions"]] == ["carol"]
    assert stopped.status_code == 200


async def test_the_hub_and_root_act_for_everyone(
    http_as: HttpAs, http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.add_session("alice")
    fake.add_session("bob")
    async with http_as(MEMBER) as hub:
        by_hub = await hub.get("/v1/sessions")
        token = await hub.get("/v1/sessions/alice/token")
    by_root = await http.get("/v1/sessions")
    assert {s["user"] for s in by_hub.json()["sessions"]} == {"alice", "bob"}
    assert {s["user"] for s in by_root.json()["sessions"]} == {"alice", "bob"}
    assert token.status_code == 200


# -- accounts: whether one may have a session now (the hub's re-check) ----------------------


async def test_the_hub_reads_an_account_its_uid_and_admin_flag(
    http_as: HttpAs, fake: FakeSessionService
) -> None:
    async with http_as(MEMBER) as hub:
        alice = await hub.get("/v1/accounts/alice")
        carol = await hub.get("/v1/accounts/carol")
    assert alice.json() == {"user": "alice", "uid": fake.uid_of("alice"), "admin": False}
    assert carol.json() == {"user": "carol", "uid": fake.uid_of("carol"), "admin": True}


async def test_a_disabled_or_unknown_account_is_a_clear_error(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.disabled.add("alice")
    body = assert_error(await http.get("/v1/accounts/alice"), 403, "account-disabled")
    assert "locked, expired" in str(body["message"])
    assert_error(await http.get("/v1/accounts/zed"), 404, "unknown-user")
    assert_error(await http.get("/v1/accounts/-x"), 422, "invalid-name")


async def test_a_member_may_read_its_own_account(http_as: HttpAs) -> None:
    async with http_as(SELF_ONLY) as carol:
        response = await carol.get("/v1/accounts/carol")
    assert response.status_code == 200 and response.json()["user"] == "carol"


# -- [[profile_list]] choices ------------------------------------------------------------

SMALL = ProfileView(slug="small", display_name="Small", mem_limit_bytes=2**30, cpu_limit=1.0)


async def test_start_passes_the_chosen_profile_and_shows_it(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.choices["alice"] = [SMALL]
    response = await http.post("/v1/sessions/alice", json={"profile": "small"})
    assert response.status_code == 201
    assert fake.profile_asked == "small"
    assert response.json()["profile_slug"] == "small"


@pytest.mark.parametrize("profile", [7, "", "x" * 65, ["small"]])
async def test_start_refuses_a_malformed_profile(
    http: httpx.AsyncClient, fake: FakeSessionService, profile: object
) -> None:
    assert_error(
        await http.post("/v1/sessions/alice", json={"profile": profile}), 422, "invalid-option"
    )
    assert ("start", "alice") not in [call[:2] for call in fake.calls]


async def test_an_unknown_profile_is_a_stable_422(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.choices["alice"] = [SMALL]
    body = assert_error(
        await http.post("/v1/sessions/alice", json={"profile": "gpu"}), 422, "unknown-profile"
    )
    assert body["message"] == "no profile gpu to choose (the choices: small)"


async def test_the_profiles_a_user_may_take(
    http: httpx.AsyncClient, fake: FakeSessionService
) -> None:
    fake.choices["alice"] = [SMALL]
    response = await http.get("/v1/accounts/alice/profiles")
    assert response.status_code == 200
    assert response.json() == {"profiles": [SMALL.to_dict()]}
    assert (await http.get("/v1/accounts/bob/profiles")).json() == {"profiles": []}
    assert_error(await http.get("/v1/accounts/zed/profiles"), 404, "unknown-user")
