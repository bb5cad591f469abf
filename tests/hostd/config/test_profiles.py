"""hostd.config.profiles: [profiles], per-user and per-group limits, and how they apply."""

from __future__ import annotations

from hostd.config import DEFAULT_SESSION_CMD, Profiles, parse_config
from hostd.config.profiles import ProfileLimits, apply_profile, parse_profiles
from hostd.units import SessionPolicy
from tests.hostd.config.samples import problems_of

PROFILES_TOML = """\
[profiles.users.alice]
mem_limit = "4G"
[profiles.groups.staff]
cpu_limit = 2.0
[profiles.groups."domain users"]
mem_limit = "1G"
cpu_limit = "0.5"
"""


def test_profiles_are_read_users_by_name_groups_in_file_order() -> None:
    assert parse_config("").profiles == Profiles()
    profiles = parse_config(PROFILES_TOML).profiles
    assert dict(profiles.users) == {"alice": ProfileLimits(mem_limit=4 * 1024**3)}
    assert profiles.groups == (
        ("staff", ProfileLimits(cpu_limit=2.0)),
        ("domain users", ProfileLimits(mem_limit=1024**3, cpu_limit=0.5)),
    )


def test_the_most_specific_profile_matches() -> None:
    profiles = parse_config(PROFILES_TOML).profiles
    assert profiles.match("alice", ["staff"]) == ("user:alice", profiles.users["alice"])
    assert profiles.match("bob", ["domain users", "staff"]) == (
        "group:staff",
        profiles.groups[0][1],
    )
    assert profiles.match("bob", ["other"]) is None


def test_a_profile_raises_the_caps_with_the_limits() -> None:
    policy = SessionPolicy(
        cmd=DEFAULT_SESSION_CMD,
        mem_limit=1024**3,
        max_mem_limit=2 * 1024**3,
        cpu_limit=1.0,
        max_cpu_limit=1.0,
    )
    raised = apply_profile(policy, ProfileLimits(mem_limit=4 * 1024**3, cpu_limit=0.5))
    assert (raised.mem_limit, raised.max_mem_limit) == (4 * 1024**3, 4 * 1024**3)
    assert (raised.cpu_limit, raised.max_cpu_limit) == (0.5, 1.0)
    assert apply_profile(policy, ProfileLimits()) is policy


def test_every_profile_problem_is_reported_by_its_key() -> None:
    problems = problems_of(
        '[profiles.users."-x"]\nmem_limit = "1G"\n'
        '[profiles.users.bob]\nmem_limit = "lots"\nmemory = "1G"\n'
        "[profiles.groups]\nstaff = 5\n"
        "[profiles.teams.a]\n"
    )
    assert [key for key, _ in problems] == [
        "profiles.users.-x",
        "profiles.users.bob.mem_limit",
        "profiles.users.bob.memory",
        "profiles.groups.staff",
        "profiles.teams",
    ]
    assert problems[2][1] == "unknown option; a profile sets mem_limit, cpu_limit, gpus"
    assert problems[3][1] == "expected a table of mem_limit, cpu_limit and gpus"


def test_profiles_must_be_a_table() -> None:
    problems: list[tuple[str, str]] = []
    assert parse_profiles(5, problems) == Profiles()
    assert problems == [("profiles", "expected [profiles.users.NAME] / [profiles.groups.NAME]")]
