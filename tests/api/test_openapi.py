"""api/openapi.py describes the app exactly: its routes, parameters and every answer it gives."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from hostd.api.openapi import CPU_PATTERN, SIZE_PATTERN, openapi_document
from hostd.api.wire import all_codes
from hostd.units import parse_cpu, parse_size
from hostd.units.errors import (
    AccountUnchecked,
    CapacityExceeded,
    Draining,
    HostdError,
    InvalidSize,
    LockedOut,
    LoginFailed,
    SessionConflict,
    SpawnFailed,
    SystemdUnavailable,
)
from hostd.units.values import HostView, PeerCredentials, PolicyView, UsageView
from tests.api.fake import ROOT, FakeSessionService
from tests.api.schema_check import KEYWORDS, errors, resolve, walk_schemas

DOCUMENT = openapi_document()
HttpAs = Callable[[PeerCredentials | None], httpx.AsyncClient]
METHODS = ("get", "post", "delete", "put", "patch")


def operations() -> list[tuple[str, str]]:
    return [
        (path, method)
        for path, item in DOCUMENT["paths"].items()
        for method in METHODS
        if method in item
    ]


def test_it_is_openapi_3_1_and_json() -> None:
    assert DOCUMENT["openapi"] == "3.1.0"
    assert json.loads(json.dumps(DOCUMENT)) == DOCUMENT


def test_it_describes_every_route_and_method_of_the_app(app: Starlette) -> None:
    served = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert served == set(operations())


def test_path_parameters_are_described() -> None:
    for path, item in DOCUMENT["paths"].items():
        described = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert described == set(re.findall(r"{(\w+)}", path)), path
        for parameter in item.get("parameters", []):
            assert parameter["schema"] == {"type": "string"}
            assert parameter["required"] is True


def test_every_ref_resolves_and_every_keyword_is_checked() -> None:
    for schema in walk_schemas(DOCUMENT):
        assert set(schema) <= KEYWORDS, schema
        if "$ref" in schema:
            assert resolve(DOCUMENT, schema["$ref"]) is not None


def test_operation_ids_are_unique() -> None:
    ids = [DOCUMENT["paths"][path][method]["operationId"] for path, method in operations()]
    assert len(ids) == len(set(ids))


def test_error_codes_are_the_full_enum() -> None:
    error = DOCUMENT["components"]["schemas"]["Error"]
    assert error["properties"]["code"]["enum"] == all_codes()


def valid(schema_name: str, value: Any) -> list[str]:
    return list(errors(DOCUMENT, {"$ref": f"#/components/schemas/{schema_name}"}, value))


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"mem_limit": "2G", "cpu_limit": 1.5, "environment": {"A": "b"}, "default_url": "/lab"},
        {"mem_limit": 1024, "cpu_limit": "0.5"},
        {"mem_limit": None, "environment": None},
    ],
)
def test_start_options_describe_what_the_daemon_takes(body: dict[str, Any]) -> None:
    assert valid("StartOptions", body) == []


@pytest.mark.parametrize(
    "body",
    [
        {"memory": "2G"},
        {"mem_limit": True},
        {"mem_limit": 0},
        {"mem_limit": "lots"},
        {"cpu_limit": 0},
        {"cpu_limit": True},
        {"environment": {"A": 1}},
        {"environment": {"1A": "x"}},
        {"default_url": "lab"},
        [],
    ],
)
def test_start_options_refuse_what_the_daemon_refuses(body: Any) -> None:
    assert valid("StartOptions", body) != []


@pytest.mark.parametrize(
    "body",
    [
        {"mem_limit": "2G"},
        {"cpu_limit": 0.5},
        {"mem_limit": 1024, "cpu_limit": "1.5"},
        {"mem_limit": None, "cpu_limit": 2},
    ],
)
def test_limit_changes_describe_what_the_daemon_takes(body: dict[str, Any]) -> None:
    assert valid("LimitChanges", body) == []


@pytest.mark.parametrize(
    "body",
    [
        {"memory": "2G"},
        {"mem_limit": "lots"},
        {"cpu_limit": 0},
        {"environment": {}},
        {"mem_limit": 1.5},
        [],
    ],
)
def test_limit_changes_refuse_what_the_daemon_refuses(body: Any) -> None:
    assert valid("LimitChanges", body) != []


@pytest.mark.parametrize(
    ("name", "view"), [("Usage", UsageView), ("Host", HostView), ("Policy", PolicyView)]
)
def test_usage_and_host_schemas_have_every_field_of_their_view(name: str, view: type) -> None:
    schema = DOCUMENT["components"]["schemas"][name]
    names = [item.name for item in dataclasses.fields(view)]
    assert list(schema["properties"]) == names
    assert schema["required"] == names


def test_a_usage_that_measured_nothing_conforms() -> None:
    assert valid("Usage", UsageView(user="alice").to_dict()) == []
    assert valid("Usage", {**UsageView(user="alice").to_dict(), "tasks": -1}) != []


@pytest.mark.parametrize(
    "text", ["1", "512M", "512m", "1.5G", "2GiB", "2gb", " 3 T ", "100B", "4K", "4KB", "4kib"]
)
def test_size_pattern_takes_what_parse_size_takes(text: str) -> None:
    parse_size(text)
    assert re.search(SIZE_PATTERN, text)


@pytest.mark.parametrize("text", ["1", "0.5", " 2 ", "1024"])
def test_cpu_pattern_takes_what_parse_cpu_takes(text: str) -> None:
    parse_cpu(text)
    assert re.search(CPU_PATTERN, text)


@pytest.mark.parametrize("text", ["lots", "-1G", "1 P", "0x10", "1e3"])
def test_size_pattern_refuses_what_parse_size_refuses(text: str) -> None:
    with pytest.raises(InvalidSize):
        parse_size(text)
    assert not re.search(SIZE_PATTERN, text)


# -- every documented answer, produced and checked ----------------------------------------

SERVICE_METHOD = {
    ("/v1/sessions", "get"): "list",
    ("/v1/sessions/{user}", "post"): "start",
    ("/v1/sessions/{user}", "delete"): "stop",
    ("/v1/sessions/{user}", "get"): "get",
    ("/v1/sessions/{user}/logs", "get"): "logs",
    ("/v1/sessions/{user}", "patch"): "set_limits",
    ("/v1/sessions/{user}/usage", "get"): "usage",
    ("/v1/sessions/{user}/usage/history", "get"): "usage_history",
    ("/v1/sessions/{user}/token", "get"): "token",
    ("/v1/sessions/{user}/activity", "post"): "activity",
    ("/v1/host", "get"): "host",
    ("/v1/host/history", "get"): "host_history",
    ("/v1/policy", "get"): "policy",
    ("/v1/health", "get"): "health",
    ("/metrics", "get"): "metrics",
    ("/openapi.json", "get"): "authorize",
    ("/v1/auth", "post"): "authenticate",
    ("/v1/accounts/{user}", "get"): "account",
    ("/v1/accounts/{user}/profiles", "get"): "profiles",
    ("/v1/maintenance", "get"): "maintenance",
    ("/v1/maintenance/announcement", "put"): "set_announcement",
    ("/v1/maintenance/announcement", "delete"): "set_announcement",
    ("/v1/maintenance/drain", "put"): "set_drain",
    ("/v1/maintenance/drain", "delete"): "set_drain",
}
# A body the operation takes, where it needs one to succeed.
VALID_BODY = {
    ("/v1/sessions/{user}", "patch"): b'{"mem_limit": "1G"}',
    ("/v1/auth", "post"): b'{"username": "alice", "password": "wonderland"}',
    ("/v1/maintenance/announcement", "put"): b'{"message": "Reboot at 22:00"}',
    ("/v1/maintenance/drain", "put"): (
        b'{"at": "%s", "message": "Reboot"}'
        % (datetime.now(UTC) + timedelta(hours=1)).isoformat().encode()
    ),
}
# Where the user is in the body, not the path: a body the operation refuses with 422.
INVALID_BODY = {
    ("/v1/auth", "post"): b'{"username": "-x", "password": "p"}',
    ("/v1/maintenance/announcement", "put"): b'{"message": "two\\nlines"}',
    ("/v1/maintenance/drain", "put"): b'{"at": "2000-01-01T00:00:00Z", "message": "past"}',
}
# Where a query parameter is what the operation refuses with 422 (no user in the path).
INVALID_QUERY = {("/v1/host/history", "get"): {"window": "1y"}}
ERROR_FOR_STATUS: dict[int, HostdError] = {
    401: LoginFailed("login failed: wrong user name or password"),
    409: SessionConflict("alice's session is stopping"),
    429: CapacityExceeded("memory is committed", retry_after_s=5),
    502: SpawnFailed(
        "it failed", details={"result": "exit-code", "exit_status": 1, "log": ["no jupyter"]}
    ),
    503: SystemdUnavailable("no answer"),
}
# Where an operation answers a status with an error of its own.
ERROR_FOR_OPERATION: dict[tuple[str, str, int], HostdError] = {
    ("/v1/auth", "post", 429): LockedOut("too many failed logins", retry_after_s=60),
    ("/v1/accounts/{user}", "get", 503): AccountUnchecked("PAM did not answer"),
    ("/v1/sessions/{user}", "post", 503): Draining("Reboot at 22:00", retry_after_s=60),
}


def scenarios() -> list[tuple[str, str, str]]:
    return [
        (path, method, status)
        for path, method in operations()
        for status in DOCUMENT["paths"][path][method]["responses"]
    ]


async def produce(
    http_as: HttpAs, fake: FakeSessionService, path: str, method: str, status: int
) -> httpx.Response:
    """A request to the operation that the app answers with ``status``."""
    user = "alice"
    peer: PeerCredentials | None = ROOT
    content = VALID_BODY.get((path, method))
    params: dict[str, str] = {}
    service_method = SERVICE_METHOD[(path, method)]
    match status:
        case 200 | 204:
            fake.add_session(user)  # for a start: it is already running
        case 201:
            pass
        case 400:
            content = b"[]"
        case 403:
            peer = None
        case 404:
            user = "zed"  # no account (start) or no session (the rest)
        case 405:
            method = next(other for other in METHODS if other not in DOCUMENT["paths"][path])
        case 422:
            user = "-x"  # an invalid name
            content = INVALID_BODY.get((path, method), content)
            params = INVALID_QUERY.get((path, method), params)
        case 500:
            fake.fail[service_method] = RuntimeError("boom")
        case _:
            fake.add_session(user)
            fake.fail[service_method] = ERROR_FOR_OPERATION.get(
                (path, method, status), ERROR_FOR_STATUS[status]
            )
    async with http_as(peer) as client:
        return await client.request(
            method.upper(), path.replace("{user}", user), content=content, params=params
        )


@pytest.mark.parametrize(("path", "method", "status"), scenarios())
async def test_each_documented_answer_is_what_the_app_sends(
    http_as: HttpAs, fake: FakeSessionService, path: str, method: str, status: str
) -> None:
    response = await produce(http_as, fake, path, method, int(status))
    assert response.status_code == int(status), response.text
    operation = DOCUMENT["paths"][path][method]
    documented = operation["responses"][status]
    if "content" not in documented:
        assert response.content == b""
        assert "content-type" not in response.headers
        return
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in documented["content"]
    schema = documented["content"][media_type]["schema"]
    body = response.json() if media_type == "application/json" else response.text
    assert list(errors(DOCUMENT, schema, body)) == []
    for header, spec in documented.get("headers", {}).items():
        if spec.get("required"):
            assert header.lower() in response.headers


async def test_the_follow_stream_is_what_the_document_says(
    http_as: HttpAs, fake: FakeSessionService
) -> None:
    fake.add_session("alice", lines=3)
    fake.follow_error = SystemdUnavailable("journal went away")
    async with http_as(ROOT) as client:
        response = await client.get("/v1/sessions/alice/logs", params={"follow": "true"})
    documented = DOCUMENT["paths"]["/v1/sessions/{user}/logs"]["get"]["responses"]["200"]
    schema = documented["content"]["application/x-ndjson"]["schema"]
    lines = response.text.splitlines()
    assert len(lines) == 4
    for line in lines:
        assert list(errors(DOCUMENT, schema, json.loads(line))) == []


async def test_the_app_serves_this_document(http: httpx.AsyncClient) -> None:
    assert (await http.get("/openapi.json")).json() == DOCUMENT


def test_the_checker_does_find_what_does_not_conform() -> None:
    session = {"user": "alice", "unit": "jupyter-alice.service", "state": "running"}
    assert valid("Session", session) != []  # fields missing
    error = {"code": "no-such-code", "message": "x"}
    assert valid("Error", error) != []
    assert valid("LogLines", {"lines": [{"cursor": 1}]}) != []
