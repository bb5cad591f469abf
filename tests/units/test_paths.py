"""units.paths: absolute paths and {USERNAME}/{USERID} templates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostd.units.errors import InvalidName, InvalidOption, InvalidPath
from hostd.units.paths import expand_template, substitute_placeholders, validate_path

FAST = settings(database=None, max_examples=500)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/home/alice",
        "/shared/users/alice",
        "/opt/My Data",
        "/srv/dätä",
        "/a/.hidden",
        "/a/...",
        "/a/b-c_d.e",
        "/%u",  # no specifier expansion over D-Bus: just a name
        "/" + "x" * 255,
        "/a" * 2047,
    ],
)
def test_valid_paths(path: str) -> None:
    assert validate_path(path) == path


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "absolute"),
        ("home/alice", "absolute"),
        ("~/notebooks", "absolute"),
        ("-/opt/data", "prefixes"),
        ("+/opt/data", "prefixes"),
        (" /opt", "absolute"),
        ("//", "normalised"),
        ("/a//b", "normalised"),
        ("/a/", "normalised"),
        ("/a/./b", "normalised"),
        ("/a/../b", "normalised"),
        ("/..", "normalised"),
        ("/.", "normalised"),
        ("/a/ /b", "whitespace"),
        ("/a/\u3000", "whitespace"),
        ("/a\nb", "control"),
        ("/a\x00b", "control"),
        ("/a\tb", "control"),
        ("/a\x7fb", "control"),
        ("/a\u202eb", "control"),  # right-to-left override
        ("/a\u2028b", "control"),
        ("/a\ud800", "control"),
        ("/" + "x" * 256, "component"),
        ("/a" * 2048, "longer"),
        ("/" + "é" * 2100, "longer"),
    ],
)
def test_invalid_paths(path: str, why: str) -> None:
    with pytest.raises(InvalidPath) as caught:
        validate_path(path)
    assert why in caught.value.message
    assert repr(path)[:40] in caught.value.message


@pytest.mark.parametrize("path", [None, 1, b"/home", ["/home"]])
def test_non_string_paths(path: object) -> None:
    with pytest.raises(InvalidPath, match="must be a string"):
        validate_path(path)


@FAST
@given(st.text(alphabet=st.sampled_from("/.a b\n\x00é\u2028~-"), max_size=30) | st.text())
def test_any_string_validates_to_a_normalised_path_or_raises(text: str) -> None:
    try:
        path = validate_path(text)
    except InvalidPath:
        return
    assert path == text
    assert path.startswith("/")
    assert path == "/" or not path.endswith("/")
    assert "//" not in path
    assert ".." not in path.split("/")
    assert "." not in path.split("/")
    assert "\n" not in path
    assert "\x00" not in path


@pytest.mark.parametrize(
    ("template", "expanded"),
    [
        ("/shared/users/{USERNAME}", "/shared/users/alice"),
        ("/data/{USERID}", "/data/1001"),
        ("/x/{USERNAME}-{USERID}/{USERNAME}", "/x/alice-1001/alice"),
        ("/plain", "/plain"),
        ("/literal/{{USERNAME}}", "/literal/{USERNAME}"),
        ("relative/{USERNAME}", "relative/alice"),  # not checked as a path here
    ],
)
def test_expand_template(template: str, expanded: str) -> None:
    assert expand_template(template, username="alice", uid=1001) == expanded


@pytest.mark.parametrize(
    "template",
    [
        "/home/{HOME}",
        "/home/{username}",
        "/home/{}",
        "/home/{0}",
        "/home/{USERNAME.__class__}",
        "/home/{USERNAME[0]}",
        "/home/{USERNAME!r}",
        "/home/{USERNAME:>10}",
        "/home/{USERNAME",
        "/home/USERNAME}",
        "/home/{PORT}",
    ],
)
def test_expand_template_refuses(template: str) -> None:
    with pytest.raises(InvalidPath) as caught:
        expand_template(template, username="alice", uid=1001)
    assert repr(template) in caught.value.message


def test_expand_template_checks_its_values() -> None:
    with pytest.raises(InvalidName):
        expand_template("/home/{USERNAME}", username="../root", uid=1)
    with pytest.raises(InvalidOption):
        expand_template("/home/{USERID}", username="alice", uid=-1)
    with pytest.raises(InvalidOption):
        expand_template("/home/{USERID}", username="alice", uid=True)
    with pytest.raises(InvalidPath, match="must be a string"):
        expand_template(None, username="alice", uid=1)  # type: ignore[arg-type]


def test_substitute_placeholders() -> None:
    values = {"PORT": "8888", "BASE_URL": "/user/a/"}
    assert substitute_placeholders("--port={PORT}", values) == "--port=8888"
    with pytest.raises(InvalidOption, match=r"\{PORT\}, \{BASE_URL\}"):
        substitute_placeholders("--ip={IP}", values, what="cmd argument")
