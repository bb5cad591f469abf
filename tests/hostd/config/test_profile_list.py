"""hostd.config.profile_list: [[profile_list]], the choices a user may take at start."""

from __future__ import annotations

import pytest

from hostd.config import DEFAULT_SESSION_CMD, ProfileList, parse_config
from hostd.config.profile_list import ProfileChoice, apply_choice
from hostd.units import SessionPolicy
from hostd.units.errors import UnknownProfile
from tests.hostd.config.samples import problems_of

GIB = 1024**3
CHOICES_TOML = """\
[session]
mem_limit = "1G"
max_mem_limit = "16G"
cpu_limit = 0.5
max_cpu_limit = 4.0
[commands]
lab = ["/usr/bin/python3", "-m", "http.server", "{PORT}"]

[[profile_list]]
slug = "small"
display_name = "Small: 2 GB, 1 CPU"
mem_limit = "2G"
cpu_limit = 1

[[profile_list]]
slug = "large"
display_name = "Large: 16 GB, 4 CPU"
description = "For big data"
default = true
mem_limit = "16G"
cpu_limit = 4.0
command = "lab"
groups = ["staff"]

[[profile_list]]
slug = "plain"
"""


def test_choices_are_read_in_file_order_with_their_defaults() -> None:
    assert parse_config("").profile_list == ProfileList()
    small, large, plain = parse_config(CHOICES_TOML).profile_list.choices
    assert small == ProfileChoice(
        slug="small", display_name="Small: 2 GB, 1 CPU", mem_limit=2 * GIB, cpu_limit=1.0
    )
    assert (large.default, large.command, large.groups, large.description) == (
        True,
        "lab",
        ("staff",),
        "For big data",
    )
    assert plain == ProfileChoice(slug="plain", display_name="plain")


def test_a_user_sees_the_choices_of_their_groups_and_gets_the_default() -> None:
    choices = parse_config(CHOICES_TOML).profile_list
    assert [c.slug for c in choices.visible(["users"])] == ["small", "plain"]
    assert [c.slug for c in choices.visible(["users", "staff"])] == ["small", "large", "plain"]
    assert choices.choose(None, ["staff"]).slug == "large"  # type: ignore[union-attr]
    # The default is hidden from a non-member: the first choice they may see.
    assert choices.choose(None, ["users"]).slug == "small"  # type: ignore[union-attr]
    assert choices.choose("plain", []).slug == "plain"  # type: ignore[union-attr]
    assert ProfileList().choose(None, ["staff"]) is None  # none configured: as before


def test_a_hidden_slug_is_refused_in_the_same_words_as_a_missing_one() -> None:
    choices = parse_config(CHOICES_TOML).profile_list
    with pytest.raises(UnknownProfile) as hidden:
        choices.choose("large", ["users"])
    with pytest.raises(UnknownProfile) as missing:
        choices.choose("larger", ["users"])
    assert hidden.value.code == missing.value.code == "unknown-profile"
    assert hidden.value.message == "no profile large to choose (the choices: small, plain)"
    assert missing.value.message.replace("larger", "large") == hidden.value.message
    with pytest.raises(UnknownProfile, match=r"no profile '\\n' to choose"):
        choices.choose("\n", [])
    with pytest.raises(UnknownProfile, match=r"\(the choices: none\)"):
        ProfileList().choose("small", [])


def test_a_choice_sets_the_limits_and_caps_them_and_names_the_command() -> None:
    config = parse_config(CHOICES_TOML)
    small, large, plain = config.profile_list.choices
    policy = config.session
    got = apply_choice(policy, small, config.commands)
    assert (got.mem_limit, got.max_mem_limit, got.cpu_limit, got.max_cpu_limit) == (
        2 * GIB,
        2 * GIB,
        1.0,
        1.0,
    )
    assert got.cmd == policy.cmd
    assert apply_choice(policy, large, config.commands).cmd == config.commands["lab"]
    assert apply_choice(policy, large, config.commands, keep_cmd=True).cmd == policy.cmd
    assert apply_choice(policy, plain, config.commands) == policy


def test_a_choices_gpus_ride_with_its_limits_and_are_checked_against_gpus() -> None:
    policy = SessionPolicy(cmd=DEFAULT_SESSION_CMD)
    gpu = ProfileChoice(slug="gpu", display_name="GPU", gpus=1)
    assert apply_choice(policy, gpu, {}).gpus == 1
    assert apply_choice(policy, ProfileChoice(slug="cpu", display_name="CPU"), {}).gpus == 0
    # More GPUs than [gpus] lists (none here): check-config says so, by the choice's key.
    assert ("profile_list[0].gpus", "2 GPUs, and [gpus] lists 0") in problems_of(
        '[[profile_list]]\nslug = "g"\ngpus = 2\n'
    )


def test_every_choice_problem_is_reported_by_its_key() -> None:
    problems = problems_of(
        '[session]\nmem_limit = "1G"\nmax_mem_limit = "4G"\ncpu_limit = 1\nmax_cpu_limit = 2\n'
        '[commands]\nlab = ["/usr/bin/python3"]\n'
        '[[profile_list]]\nslug = "a"\ndefault = true\ncommand = "nope"\nmem_limit = "8G"\n'
        '[[profile_list]]\nslug = "a"\n'
        '[[profile_list]]\nslug = "b"\ndefault = true\ncpu_limit = 3\n'
        '[[profile_list]]\nslug = "c"\ndefault = "yes"\ngpus = -1\ngroups = ["a:b"]\n'
        'memory = "1G"\ndisplay_name = 5\n'
        '[[profile_list]]\nslug = "Big One"\n'
        "[[profile_list]]\ndescription = 'no slug'\n"
        '[[profile_list]]\nslug = "d"\ndefault = true\n'
    )
    keys = dict(problems)
    assert keys["profile_list[0].command"] == (
        "unknown command 'nope': name one of [commands] (defined: lab)"
    )
    assert keys["profile_list[0].mem_limit"] == "8G is above [session] max_mem_limit"
    assert keys["profile_list[1].slug"] == "duplicate slug 'a'"
    assert keys["profile_list[2].cpu_limit"] == "3 is above [session] max_cpu_limit"
    assert keys["profile_list[3].default"] == "expected true or false"
    assert "whole number of GPUs" in keys["profile_list[3].gpus"]
    assert "group name" in keys["profile_list[3].groups"]
    assert keys["profile_list[3].memory"].startswith("unknown option; a choice sets slug")
    assert "printable text" in keys["profile_list[3].display_name"]
    assert "lower-case letters" in keys["profile_list[4].slug"]
    assert keys["profile_list[5].slug"] == "missing: every choice needs a slug"
    assert keys["profile_list"] == "two or more choices say default = true: a, b, d"


def test_the_shape_of_profile_list_is_checked() -> None:
    assert problems_of('profile_list = "small"\n') == [
        ("profile_list", "expected [[profile_list]] tables")
    ]
    assert problems_of("profile_list = [1]\n") == [
        ("profile_list[0]", "expected a [[profile_list]] table")
    ]
    many = "".join(f'[[profile_list]]\nslug = "p{i}"\n' for i in range(33))
    assert problems_of(many) == [("profile_list", "at most 32 choices, not 33")]
