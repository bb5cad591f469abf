"""hostd.api.wire: what one end writes, the other reads back (requests and the policy)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hostd.api.wire import (
    MAX_BODY_BYTES,
    credentials_body,
    credentials_from_body,
    empty_from_body,
    limit_changes_from_body,
    limits_body,
    policy_from_dict,
    policy_to_dict,
    query_bool,
    query_int,
    request_object,
    start_body,
    start_from_body,
)
from hostd.units import SessionPolicy
from hostd.units.errors import InvalidName, InvalidOption
from hostd.units.values import PolicyView


def over_json(data: dict[str, Any]) -> Any:
    return json.loads(json.dumps(data))


def test_a_start_reads_back_what_the_client_wrote() -> None:
    body = start_body(
        mem_limit="1G",
        environment={"JUPYTERHUB_USER": "alice"},
        command="singleuser",
        secrets={"JUPYTERHUB_API_TOKEN": "t"},
    )
    assert "cpu_limit" not in body  # None: the policy's default, not sent
    request, command, secrets = start_from_body(over_json(body))
    assert (request.mem_limit, request.cpu_limit) == (1024**3, None)
    assert dict(request.environment) == {"JUPYTERHUB_USER": "alice"}
    assert (command, secrets) == ("singleuser", {"JUPYTERHUB_API_TOKEN": "t"})
    assert start_from_body({})[1:] == (None, {})


def test_limits_and_credentials_read_back() -> None:
    assert limit_changes_from_body(over_json(limits_body(cpu_limit=1.5))) == (None, 1.5)
    credentials = credentials_from_body(over_json(credentials_body("alice", "pw")))
    assert (credentials.username, credentials.password) == ("alice", "pw")
    empty_from_body({})


@pytest.mark.parametrize(
    ("read", "body", "error", "text"),
    [
        (start_from_body, {"memory": "1G"}, InvalidOption, "unknown option 'memory'"),
        (start_from_body, {"command": 1}, InvalidOption, "command: expected a name"),
        (limit_changes_from_body, {}, InvalidOption, "nothing to change"),
        (empty_from_body, {"x": 1}, InvalidOption, "allowed: none"),
        (credentials_from_body, {"password": "p"}, InvalidName, "username is required"),
    ],
)
def test_what_the_daemon_refuses_names_the_field(
    read: Any, body: dict[str, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        read(body)


def test_query_parameters() -> None:
    assert query_bool("wait", None, default=True) is True
    assert query_bool("wait", "FALSE", default=True) is False
    assert query_int("lines", "7", default=100, low=1, high=10) == 7
    for value in ("+7", " 7", "1_0", "11"):
        with pytest.raises(InvalidOption, match="lines: expected a whole number from 1 to 10"):
            query_int("lines", value, default=100, low=1, high=10)


@pytest.mark.parametrize(
    ("body", "text"),
    [(b"[", "request body is not JSON"), (b"[]", "must be a JSON object, not list")],
)
def test_a_request_body_that_is_not_an_object_is_refused(body: bytes, text: str) -> None:
    assert request_object(b" \n") == {}
    with pytest.raises(ValueError, match=text):
        request_object(body)
    with pytest.raises(ValueError, match="not JSON"):
        request_object(b"[" * MAX_BODY_BYTES)  # too deep for the parser


def test_the_policy_reads_back_and_a_wrong_type_is_refused() -> None:
    policy = PolicyView.of(
        SessionPolicy(
            cmd=("/bin/true",),
            isolate_tmp=True,
            readonly_paths=("/srv",),
            unit_extra_properties={"TasksMax": 512},
            cpu_limit=1.5,
            max_cpu_limit=4,
        ),
        commands=("singleuser", "lab"),
        config_file="/etc/hostd/hostd.toml",
    )
    assert policy_from_dict(over_json(policy_to_dict(policy))) == policy
    assert policy.commands == ("lab", "singleuser")
    for key, value in [("isolate_tmp", 1), ("readonly_paths", "/srv"), ("cpu_limit", "1")]:
        with pytest.raises(TypeError, match=key):
            policy_from_dict({**policy_to_dict(policy), key: value})
    with pytest.raises(KeyError):
        policy_from_dict({k: v for k, v in policy_to_dict(policy).items() if k != "commands"})
