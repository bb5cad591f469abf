"""The hub's security primitives: post-login redirects, same-site checks, signatures."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from hostd.api.hub.security import Secret, cross_site, hash_token, new_token, safe_next

# Each would leave the hub in some browser (or is not a path of the hub at all).
OPEN_REDIRECTS = [
    "//evil.example",
    "///evil.example",
    "////evil.example/hub/home",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/hub/\\..\\\\evil.example",
    "https://evil.example/hub/home",
    "http:/evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "data:text/html,hi",
    "evil.example",
    "hub/home",
    "/elsewhere",
    "",
    " /hub/home",
    "/hub/" + "a" * 3000,
]


@pytest.mark.parametrize("value", OPEN_REDIRECTS)
def test_every_form_of_open_redirect_is_refused(value: str) -> None:
    assert safe_next(value) is None


@pytest.mark.parametrize(
    "value", ["/hub/home", "/hub/admin", "/user/alice/lab", "/user/alice/lab/tree/a%2Fb?x=1#y"]
)
def test_paths_on_the_hub_are_kept(value: str) -> None:
    assert safe_next(value) == value


def test_none_is_no_next() -> None:
    assert safe_next(None) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, False),
        ({"sec-fetch-site": "same-origin"}, False),
        ({"sec-fetch-site": "none"}, False),
        ({"sec-fetch-site": "same-site"}, True),
        ({"sec-fetch-site": "cross-site"}, True),
        ({"host": "hub:8000", "origin": "http://hub:8000"}, False),
        ({"host": "hub:8000", "origin": "https://HUB:8000"}, False),
        ({"host": "hub:8000", "origin": "http://evil:8000"}, True),
        ({"host": "hub:8000", "origin": "http://hub:8001"}, True),
        ({"host": "hub:8000", "origin": "null"}, True),
        # Sec-Fetch-Site is believed over Origin.
        ({"host": "hub", "origin": "http://hub", "sec-fetch-site": "cross-site"}, True),
    ],
)
def test_cross_site(headers: dict[str, str], expected: bool) -> None:
    assert cross_site(Headers(headers)) is expected


def test_signatures_are_bound_to_key_purpose_and_value() -> None:
    key, other = Secret(b"k" * 32), Secret(b"o" * 32)
    signed = key.sign("session", "abc")
    assert key.verify("session", signed) == "abc"
    for bad in (
        other.sign("session", "abc"),
        key.sign("login", "abc"),
        signed.replace("abc", "abd"),
        signed + "x",
        "abc",
        "a.b.c",
        "",
        None,
    ):
        assert key.verify("session", bad) is None
    token = key.token_for("xsrf", "session-1")
    assert key.check_token("xsrf", "session-1", token)
    assert not key.check_token("xsrf", "session-2", token)
    assert not key.check_token("xsrf", "session-1", None)


def test_tokens_are_random_and_kept_as_hashes() -> None:
    first, second = new_token(), new_token()
    assert first != second and len(first) >= 43 and "." not in first
    assert hash_token(first) == hash_token(first) != hash_token(second)
    assert len(hash_token(first)) == 64
