"""hostd.daemon.users: real lookups in this machine's user database (no account is created).

root (uid 0), daemon (uid 1) and nobody (uid 65534), and groups root and daemon, exist on every
Debian-family system; nobody's uid is above any min_uid, so it stands in for an ordinary account.
"""

from __future__ import annotations

import grp
import os
import pwd

import pytest

from hostd.daemon.users import group_members_gid, lookup_user, name_for_uid, user_in_group
from hostd.units import UserInfo
from hostd.units.errors import InvalidName, UnknownUser, UserRefused

NOBODY = pwd.getpwnam("nobody")
NOBODY_GROUP = grp.getgrgid(NOBODY.pw_gid).gr_name  # "nogroup" on Debian, "nobody" elsewhere


def test_an_ordinary_account_is_looked_up() -> None:
    assert lookup_user("nobody", min_uid=1000, max_uid=65534) == UserInfo(
        name="nobody",
        uid=NOBODY.pw_uid,
        gid=NOBODY.pw_gid,
        home=NOBODY.pw_dir,
        shell=NOBODY.pw_shell,
    )


def test_root_is_refused_whatever_min_uid() -> None:
    with pytest.raises(UserRefused, match=r"^root may not have a session$"):
        lookup_user("root", min_uid=0)


def test_a_system_account_is_refused_below_min_uid() -> None:
    with pytest.raises(UserRefused, match=r"'daemon' is a system account \(uid 1 .*min_uid 1000"):
        lookup_user("daemon", min_uid=1000)
    assert lookup_user("daemon", min_uid=1).uid == 1


def test_an_unknown_name() -> None:
    with pytest.raises(UnknownUser, match=r"^no account named 'no-such-user-x' on this machine$"):
        lookup_user("no-such-user-x", min_uid=1000)


@pytest.mark.parametrize("name", ["", "bad name", "../etc", "a" * 33, "root\n", "-rf"])
def test_an_invalid_name_is_refused_before_any_lookup(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_lookup(name: str) -> pwd.struct_passwd:
        raise AssertionError("looked up an invalid name")

    monkeypatch.setattr(pwd, "getpwnam", no_lookup)
    with pytest.raises(InvalidName):
        lookup_user(name, min_uid=1000)


def test_allowed_groups_by_primary_group() -> None:
    assert (
        lookup_user(
            "nobody", min_uid=1000, max_uid=65534, allowed_groups=("root", NOBODY_GROUP)
        ).uid
        == 65534
    )
    with pytest.raises(
        UserRefused,
        match=r"'nobody' is not allowed a session \(allowed: group root, group daemon\)$",
    ):
        lookup_user("nobody", min_uid=1000, max_uid=65534, allowed_groups=("root", "daemon"))
    # A group that does not exist has no members.
    with pytest.raises(UserRefused):
        lookup_user("nobody", min_uid=1000, max_uid=65534, allowed_groups=("no-such-group-x",))


def test_allowed_users_are_allowed_with_or_without_the_groups() -> None:
    """[daemon] allowed_users (TLJH's users.allowed): named users may, whatever their groups;
    with allowed_groups too, members of those may as well."""
    only = lookup_user("nobody", min_uid=1000, max_uid=65534, allowed_users=("nobody",))
    assert only.uid == 65534
    either = lookup_user(
        "nobody", min_uid=1000, max_uid=65534, allowed_groups=("root",), allowed_users=("nobody",)
    )
    assert either.uid == 65534
    with pytest.raises(UserRefused, match=r"\(allowed: group root, alice\)$"):
        lookup_user(
            "nobody",
            min_uid=1000,
            max_uid=65534,
            allowed_groups=("root",),
            allowed_users=("alice",),
        )
    with pytest.raises(UserRefused, match=r"\(allowed: alice\)$"):
        lookup_user("nobody", min_uid=1000, max_uid=65534, allowed_users=("alice",))


def test_allowed_groups_by_supplementary_group(monkeypatch: pytest.MonkeyPatch) -> None:
    # No account is in a supplementary group here, and none is created: NSS answers as if
    # nobody were in group daemon (as initgroups(3) would for an sssd member).
    daemon_gid = grp.getgrnam("daemon").gr_gid
    monkeypatch.setattr(os, "getgrouplist", lambda name, gid: [gid, daemon_gid])
    assert (
        lookup_user("nobody", min_uid=1000, max_uid=65534, allowed_groups=("daemon",)).name
        == "nobody"
    )
    assert user_in_group("nobody", "daemon")


def test_a_failing_group_list_means_not_a_member(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(name: str, gid: int) -> list[int]:
        raise OSError("getgrouplist failed")

    monkeypatch.setattr(os, "getgrouplist", fail)
    assert not user_in_group("nobody", "daemon")
    assert user_in_group("nobody", NOBODY_GROUP)  # the primary group needs no list


def test_user_in_group() -> None:
    assert user_in_group(0, "root")
    assert user_in_group("root", "root")
    assert user_in_group(NOBODY.pw_uid, NOBODY_GROUP)
    assert not user_in_group("nobody", "root")
    assert not user_in_group("no-such-user-x", "root")
    assert not user_in_group(4_000_000_000, "root")
    assert not user_in_group(-1, "root")
    assert not user_in_group(0, "no-such-group-x")
    assert not user_in_group("root", "bad\x00group")


def test_group_members_gid() -> None:
    assert group_members_gid("root") == 0
    assert group_members_gid(NOBODY_GROUP) == NOBODY.pw_gid
    assert group_members_gid("no-such-group-x") is None


def test_name_for_uid() -> None:
    assert name_for_uid(0) == "root"
    assert name_for_uid(NOBODY.pw_uid) == "nobody"
    assert name_for_uid(4_000_000_000) == "4000000000"
    assert name_for_uid(-1) == "-1"


def test_nobody_and_ids_above_uid_max_are_system_accounts() -> None:
    with pytest.raises(
        UserRefused, match=r"'nobody' is a system account \(uid 65534 is above UID_MAX 60000\)"
    ):
        lookup_user("nobody", min_uid=1000)
