"""hostd.config.shared: [shared], and its scratch directory in every session's ReadWritePaths=."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostd.config import parse_config
from hostd.config.shared import SharedConfig, parse_shared
from hostd.units.errors import ConfigError


def test_parse_shared() -> None:
    problems: list[tuple[str, str]] = []
    assert parse_shared({}, problems) == SharedConfig(scratch=None, scratch_group="users")
    assert parse_shared({"scratch": "/srv/scratch", "scratch_group": "lab"}, problems) == (
        SharedConfig(scratch=Path("/srv/scratch"), scratch_group="lab")
    )
    assert problems == []


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"scratch": "srv"}, ("shared.scratch", "invalid path 'srv': must be absolute")),
        (
            {"scratch": "/srv/{USERNAME}"},
            (
                "shared.scratch",
                "expected one directory without placeholders, not '/srv/{USERNAME}'",
            ),
        ),
        ({"scratch": "/"}, ("shared.scratch", "expected a directory of its own, not /")),
        (
            {"scratch_group": "a:b"},
            ("shared.scratch_group", "expected a group name like 'users', not 'a:b'"),
        ),
        (
            {"scratch_dir": "/x"},
            ("shared.scratch_dir", "unknown key; known: scratch, scratch_group"),
        ),
        ("nope", ("shared", "expected a table [shared], not 'nope'")),
    ],
)
def test_parse_shared_problems(table: object, problem: tuple[str, str]) -> None:
    problems: list[tuple[str, str]] = []
    parse_shared(table, problems)
    assert problems == [problem]


def test_the_scratch_directory_is_writable_in_every_session() -> None:
    config = parse_config(
        '[session]\nreadonly_paths = ["/"]\nreadwrite_paths = ["/home/{USERNAME}"]\n'
        '[shared]\nscratch = "/srv/scratch"\n'
    )
    assert config.session.readwrite_paths == ("/home/{USERNAME}", "/srv/scratch")
    # Counted once, as what the admin wrote.
    assert config.changed_options() == (
        "session.readonly_paths",
        "session.readwrite_paths",
        "shared.scratch",
    )
    twice = parse_config(
        '[session]\nreadwrite_paths = ["/srv/scratch"]\n[shared]\nscratch = "/srv/scratch"\n'
    )
    assert twice.session.readwrite_paths == ("/srv/scratch",)


def test_a_bad_shared_section_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('[shared]\nscratch = "relative"\n')
    assert caught.value.problems == [
        ("shared.scratch", "invalid path 'relative': must be absolute")
    ]
