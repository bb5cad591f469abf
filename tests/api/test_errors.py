"""hostd.api.wire: the one table from hostd.units.errors to HTTP statuses, its reverse, and
the tables of the hub and the spawner, derived from it."""

from __future__ import annotations

import json

import pytest

from hostd.api.daemon import error_response, http_error_response
from hostd.api.hub.api import HUB_STATUS
from hostd.api.hub.forms import BadInput, TooLarge
from hostd.api.hub.servers import NotPending, ServerBusy
from hostd.api.spawner import SPAWN_STATUS
from hostd.api.wire import (
    ERROR_BY_CODE,
    HTTP_CODES,
    STATUS_BY_ERROR,
    DaemonUnreachable,
    all_codes,
    error_body,
    error_from_body,
    error_from_wire,
    status_for,
)
from hostd.units import errors
from hostd.units.errors import (
    AccountDisabled,
    AccountUnchecked,
    CapacityExceeded,
    ConfigError,
    Draining,
    GpusNotConfigured,
    GpusUnavailable,
    HostdError,
    InvalidInput,
    InvalidName,
    InvalidOption,
    InvalidPath,
    InvalidServerName,
    InvalidSize,
    LockedOut,
    LoginFailed,
    PermissionDenied,
    SessionConflict,
    SessionNotFound,
    SpawnFailed,
    SystemdUnavailable,
    TooManyServers,
    UnknownDirective,
    UnknownProfile,
    UnknownUser,
    UserRefused,
)

ERROR_CLASSES = [getattr(errors, name) for name in errors.__all__]

EXPECTED_STATUS = {
    InvalidInput: 422,
    InvalidName: 422,
    InvalidPath: 422,
    InvalidSize: 422,
    InvalidOption: 422,
    InvalidServerName: 422,
    UnknownDirective: 422,
    UnknownProfile: 422,
    PermissionDenied: 403,
    UserRefused: 403,
    AccountDisabled: 403,
    AccountUnchecked: 503,
    LoginFailed: 401,
    LockedOut: 429,
    UnknownUser: 404,
    SessionNotFound: 404,
    SessionConflict: 409,
    TooManyServers: 409,
    CapacityExceeded: 429,
    GpusUnavailable: 429,
    GpusNotConfigured: 422,
    Draining: 503,
    SpawnFailed: 502,
    SystemdUnavailable: 503,
    ConfigError: 500,
    HostdError: 500,
}


def test_every_class_of_the_tree_has_the_status_the_table_says() -> None:
    assert set(ERROR_CLASSES) == set(EXPECTED_STATUS)
    for cls, status in EXPECTED_STATUS.items():
        assert status_for(cls) == status, cls


def test_lookup_walks_the_mro() -> None:
    class Busy(SessionConflict):
        code = "busy"

    class Odd(InvalidName):
        pass

    assert status_for(Busy) == 409
    assert status_for(Busy("x")) == 409
    assert status_for(Odd("x")) == 422
    assert Busy not in STATUS_BY_ERROR


def test_codes_map_back_to_their_classes() -> None:
    assert len({cls.code for cls in ERROR_CLASSES}) == len(ERROR_CLASSES)
    assert dict(ERROR_BY_CODE) == {cls.code: cls for cls in ERROR_CLASSES}


def test_http_codes_are_apart_from_domain_codes_but_not_found() -> None:
    # "not-found" is shared on purpose: an unknown route and a missing session both mean
    # "nothing there" to a client.
    assert set(HTTP_CODES.values()) & set(ERROR_BY_CODE) == {"not-found"}
    assert all_codes() == sorted(set(ERROR_BY_CODE) | set(HTTP_CODES.values()))
    assert {"bad-request", "method-not-allowed", "internal"} <= set(all_codes())


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_error_response_and_back(cls: type[HostdError]) -> None:
    if cls is CapacityExceeded or cls is GpusUnavailable:
        error: HostdError = cls("full", retry_after_s=12)
    elif cls is LockedOut:
        error = LockedOut("too many failed logins", retry_after_s=600)
    elif cls is Draining:
        error = Draining("Reboot for a kernel update", retry_after_s=75)
    elif cls is ConfigError:
        error = ConfigError([("mem_limit", "invalid size"), ("cmd", "must name a program")])
    else:
        error = cls("something went wrong", details={"why": ["a", "b"]})
    response = error_response(error)
    assert response.status_code == EXPECTED_STATUS[cls]
    assert response.headers["content-type"] == "application/json"
    body = json.loads(bytes(response.body))
    assert body == error.to_dict()

    back = error_from_wire(body["code"], body["message"], body.get("details"))
    assert type(back) is cls
    assert (back.code, back.message, back.details, str(back)) == (
        error.code,
        error.message,
        error.details,
        str(error),
    )


def test_capacity_answers_retry_after_and_keeps_it_on_the_way_back() -> None:
    response = error_response(CapacityExceeded("full", retry_after_s=90))
    assert response.headers["retry-after"] == "90"
    back = error_from_wire("capacity", "full", {"retry_after_s": 90})
    assert isinstance(back, CapacityExceeded) and back.retry_after_s == 90


def test_draining_answers_retry_after_and_keeps_it_on_the_way_back() -> None:
    response = error_response(Draining("Reboot at 22:00", retry_after_s=300))
    assert (response.status_code, response.headers["retry-after"]) == (503, "300")
    back = error_from_wire("draining", "Reboot at 22:00", {"retry_after_s": 300})
    assert isinstance(back, Draining) and back.retry_after_s == 300


def test_locked_out_answers_retry_after_and_keeps_it_on_the_way_back() -> None:
    response = error_response(LockedOut("too many failed logins", retry_after_s=840))
    assert (response.status_code, response.headers["retry-after"]) == (429, "840")
    back = error_from_wire("locked-out", "too many failed logins", {"retry_after_s": 840})
    assert isinstance(back, LockedOut) and back.retry_after_s == 840
    assert isinstance(error_from_wire("locked-out", "x", None), LockedOut)


def test_login_failed_is_401_without_details() -> None:
    response = error_response(LoginFailed("login failed"))
    assert response.status_code == 401
    assert json.loads(bytes(response.body)) == {"code": "login-failed", "message": "login failed"}


@pytest.mark.parametrize("details", [None, {}, {"retry_after_s": "soon"}, {"retry_after_s": True}])
def test_capacity_without_a_usable_retry_after_gets_the_default(
    details: dict[str, object] | None,
) -> None:
    back = error_from_wire("capacity", "full", details)
    assert isinstance(back, CapacityExceeded) and back.retry_after_s == 30


def test_an_unknown_code_is_a_hostd_error_that_keeps_the_code() -> None:
    back = error_from_wire("internal", "internal error; see the daemon's journal")
    assert type(back) is HostdError
    assert back.code == "internal"
    assert back.to_dict() == {
        "code": "internal",
        "message": "internal error; see the daemon's journal",
    }
    assert HostdError.code == "error"  # the class is untouched
    later = error_from_wire("quota-exceeded", "a newer daemon's error", {"n": 1})
    assert (type(later), later.code, later.details) == (HostdError, "quota-exceeded", {"n": 1})


def test_http_error_response() -> None:
    response = http_error_response(
        405, "method-not-allowed", "PUT is not allowed", headers={"Allow": "GET"}
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert json.loads(bytes(response.body)) == {
        "code": "method-not-allowed",
        "message": "PUT is not allowed",
    }


def test_an_error_body_reads_back_and_a_body_that_is_not_one_is_refused() -> None:
    error = SpawnFailed("it failed", details={"log": ["x"]})
    back = error_from_body(json.loads(json.dumps(error_body(error))))
    assert (type(back), back.message, back.details) == (SpawnFailed, "it failed", {"log": ["x"]})
    bodies: list[object] = [
        [],
        {"code": "x"},
        {"code": 1, "message": "m"},
        {"code": "x", "message": "m", "details": []},
    ]
    for body in bodies:
        with pytest.raises((KeyError, TypeError)):
            error_from_body(body)


# -- the tables derived from the wire's ------------------------------------------------------

EVERY_ERROR = [*ERROR_BY_CODE.values(), DaemonUnreachable]
# Where JupyterHub's shape differs from the wire's: (the wire's status, the derived table's).
HUB_DIFFERS = {InvalidInput: (422, 400), UnknownProfile: (422, 400), SpawnFailed: (502, 500)}
SPAWN_DIFFERS = {
    InvalidInput: (422, 400),
    UnknownProfile: (422, 400),
    SpawnFailed: (502, 500),
    CapacityExceeded: (429, 503),
}


@pytest.mark.parametrize(
    "table", [STATUS_BY_ERROR, HUB_STATUS, SPAWN_STATUS], ids=["wire", "hub", "spawner"]
)
@pytest.mark.parametrize("cls", EVERY_ERROR, ids=lambda cls: cls.code)
def test_every_error_code_has_a_status_in_each_table(
    table: dict[type[HostdError], int], cls: type[HostdError]
) -> None:
    assert set(STATUS_BY_ERROR) <= set(table)  # derived: nothing of the wire's is left out
    assert 400 <= status_for(cls, table) <= 599


@pytest.mark.parametrize(
    ("table", "differs"), [(HUB_STATUS, HUB_DIFFERS), (SPAWN_STATUS, SPAWN_DIFFERS)]
)
def test_the_hub_and_the_spawner_differ_from_the_wire_only_where_jupyterhub_does(
    table: dict[type[HostdError], int],
    differs: dict[type[HostdError], tuple[int, int]],
) -> None:
    changed = {
        cls: (status, table[cls]) for cls, status in STATUS_BY_ERROR.items() if table[cls] != status
    }
    assert changed == differs


def test_the_hubs_own_errors_have_jupyterhubs_statuses() -> None:
    assert status_for(TooLarge, HUB_STATUS) == 413
    assert status_for(BadInput, HUB_STATUS) == 400
    assert status_for(ServerBusy, HUB_STATUS) == 400
    assert status_for(NotPending, HUB_STATUS) == 400
    assert status_for(DaemonUnreachable("gone", socket_path="/x"), HUB_STATUS) == 503
