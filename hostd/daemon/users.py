"""Accounts and groups, as the machine's user database (NSS) knows them (hostd/ layer).

The only module that touches pwd and grp. A KeyError from them becomes UnknownUser (or a
plain answer: False, None, the number) here, never further up.

Every function here does blocking NSS lookups. They are fast for files-backed NSS, but sssd or
LDAP can take a network round trip, so async code calls them through
``await asyncio.to_thread(lookup_user, ...)``, never directly on the event loop.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd

from hostd.config import DaemonConfig
from hostd.units import UserInfo, validate_username
from hostd.units.errors import UnknownUser, UserRefused

__all__ = [
    "group_members_gid",
    "group_names",
    "lookup_session_user",
    "lookup_user",
    "name_for_uid",
    "user_in_group",
]


# nobody (65534) and the overflow ids above UID_MAX are system accounts too (login.defs(5)).
DEFAULT_MAX_UID = 60000


async def lookup_session_user(name: str, daemon: DaemonConfig) -> UserInfo:
    """lookup_user under the daemon's account policy ([daemon] min_uid, allowed_groups,
    allowed_users), off the event loop: what every start, login and account check asks."""
    return await asyncio.to_thread(
        lookup_user,
        name,
        min_uid=daemon.resolved_min_uid,
        allowed_groups=daemon.allowed_groups,
        allowed_users=daemon.allowed_users,
    )


def lookup_user(
    name: str,
    *,
    min_uid: int,
    allowed_groups: tuple[str, ...] = (),
    allowed_users: tuple[str, ...] = (),
    max_uid: int = DEFAULT_MAX_UID,
) -> UserInfo:
    """The account that may have a session under this name, or the error saying why not.

    Raises InvalidName for a name that fails validation (before any lookup), UnknownUser if
    there is no such account, and UserRefused for uid 0, a uid below min_uid (a system
    account) or, when allowed_groups or allowed_users is set, a user in none of those groups
    (primary or supplementary) and not named in allowed_users.
    """
    validate_username(name)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise UnknownUser(f"no account named {name!r} on this machine") from None
    # The database's spelling, not the caller's: a case-insensitive source (LDAP) answers
    # "Alice" for "alice", and one account must have one unit name. Checked again because
    # it comes from the database, not from hostd's validation.
    user = validate_username(entry.pw_name)
    if entry.pw_uid == 0:
        alias = "" if user == "root" else f" ({user!r} is uid 0)"
        raise UserRefused(f"root may not have a session{alias}")
    if entry.pw_uid < min_uid:
        raise UserRefused(
            f"{user!r} is a system account (uid {entry.pw_uid} is below min_uid {min_uid})"
        )
    if entry.pw_uid > max_uid:
        raise UserRefused(
            f"{user!r} is a system account (uid {entry.pw_uid} is above UID_MAX {max_uid})"
        )
    if (allowed_groups or allowed_users) and not (
        user in allowed_users or any(_is_member(entry, group) for group in allowed_groups)
    ):
        allowed = [*(f"group {group}" for group in allowed_groups), *allowed_users]
        raise UserRefused(f"{user!r} is not allowed a session (allowed: {', '.join(allowed)})")

    return UserInfo(
        name=user, uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir, shell=entry.pw_shell
    )


def _is_member(entry: pwd.struct_passwd, group: str) -> bool:
    try:
        found = grp.getgrnam(group)
    except (KeyError, ValueError):
        return False  # no such group: nobody is in it
    if found.gr_gid == entry.pw_gid or entry.pw_name in found.gr_mem:
        return True
    try:
        # What initgroups(3) would give the user, from every NSS source: also where a group's
        # member list is not enumerated (sssd with enumerate = false leaves gr_mem short).
        return found.gr_gid in os.getgrouplist(entry.pw_name, entry.pw_gid)
    except OSError:
        return False


def user_in_group(uid_or_name: int | str, group: str) -> bool:
    """True if the account (by uid or name) is in group, as primary or supplementary group.

    An unknown account or group is not a member.
    """
    try:
        if isinstance(uid_or_name, int):
            entry = pwd.getpwuid(uid_or_name)
        else:
            entry = pwd.getpwnam(uid_or_name)
    except (KeyError, OverflowError, ValueError):
        return False
    return _is_member(entry, group)


def group_members_gid(group: str) -> int | None:
    """The gid of the group of that name (the one whose members may use the socket, say), or
    None if there is no such group."""
    try:
        return grp.getgrnam(group).gr_gid
    except (KeyError, ValueError):
        return None


def name_for_uid(uid: int) -> str:
    """The account name of uid, for logs and messages; str(uid) if it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return str(uid)


def group_names(user: str, gid: int) -> tuple[str, ...]:
    """Names of every group the account is in (primary first), for group profiles."""
    names: list[str] = []
    for group_id in [gid, *(g for g in os.getgrouplist(user, gid) if g != gid)]:
        try:
            names.append(grp.getgrgid(group_id).gr_name)
        except KeyError:
            continue
    return tuple(names)
