"""hostd.units.values: what crosses the daemon's socket reads back as it was written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hostd.units.values import AccountView, AuthResult, Caller, Limits, SessionView


def test_a_session_view_reads_back_what_it_wrote() -> None:
    view = SessionView(
        user="alice",
        unit="jupyter-alice.service",
        state="running",
        started_at=datetime(2026, 12, 6, tzinfo=UTC),
        url="http://127.0.0.1:20001/user/alice/",
        limits=Limits(mem_limit_bytes=2**30, cpu_limit=1.5),
        profile="group:staff",
        cull_at=datetime(2026, 12, 6, 1, 5, tzinfo=UTC),
    )
    assert SessionView.from_dict(view.to_dict()) == view
    assert view.to_dict()["cull_at"] == "2026-12-06T01:05:00+00:00"


def test_a_view_from_a_daemon_without_cull_warnings_has_no_cull_at() -> None:
    data = SessionView(user="alice", unit="jupyter-alice.service", state="running").to_dict()
    del data["cull_at"]
    assert SessionView.from_dict(data).cull_at is None


def test_an_unknown_state_is_refused() -> None:
    data = SessionView(user="alice", unit="jupyter-alice.service", state="stopped").to_dict()
    with pytest.raises(ValueError, match="unknown session state 'dancing'"):
        SessionView.from_dict({**data, "state": "dancing"})


def test_a_caller_acts_for_itself_unless_it_acts_for_others() -> None:
    carol = Caller(uid=1001, name="carol", privileged=False)
    hub = Caller(uid=999, name="hostd-hub", privileged=False, acts_for_others=True)
    assert carol.may_act_for("carol") and not carol.may_act_for("alice")
    assert hub.may_act_for("alice") and hub.may_act_for("carol")


def test_an_account_view_crosses_and_comes_back() -> None:
    view = AccountView(user="alice", uid=1000, admin=True)
    assert AccountView.from_dict(view.to_dict()) == view
    assert view.to_dict() == {"user": "alice", "uid": 1000, "admin": True}


@pytest.mark.parametrize(
    "data",
    [
        {"user": "alice", "uid": None, "admin": False},
        {"user": "alice", "uid": -1, "admin": False},
        {"user": "alice", "uid": True, "admin": False},
        {"user": "alice", "uid": "1000", "admin": False},
        {"user": 5, "uid": 1000, "admin": False},
        {"user": "alice", "uid": 1000, "admin": "no"},
    ],
)
def test_an_account_view_of_the_wrong_shape_is_a_type_error(data: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        AccountView.from_dict(data)


def test_an_auth_result_carries_the_uid_when_the_daemon_sends_one() -> None:
    assert AuthResult.from_dict({"user": "a", "admin": False, "uid": 7}).uid == 7
    assert AuthResult.from_dict({"user": "a", "admin": False}).uid is None  # an older daemon
    with pytest.raises(TypeError):
        AuthResult.from_dict({"user": "a", "admin": False, "uid": "7"})
