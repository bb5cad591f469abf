"""units.urls: a session's base URL and default URL."""

from __future__ import annotations

import pytest

from hostd.units.errors import InvalidOption
from hostd.units.urls import URL_MAX, validate_base_url, validate_default_url


@pytest.mark.parametrize("url", ["/", "/user/alice/", "/user/mary-jane/lab%20x/", "/u/a.b~c/"])
def test_valid_base_urls(url: str) -> None:
    assert validate_base_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "user/alice/",
        "/user/alice",
        "//evil.example/",
        "/user//alice/",
        "/user/../alice/",
        "/user/./",
        "/user/$HOME/",
        "/user/al ice/",
        "/user/alice/?x=1/",
        "/user/al\nice/",
        "/" + "a/" * URL_MAX,
        None,
        5,
    ],
)
def test_invalid_base_urls(url: object) -> None:
    with pytest.raises(InvalidOption) as caught:
        validate_base_url(url)
    assert repr(url)[:40] in caught.value.message


@pytest.mark.parametrize("url", ["/lab", "/tree?path=x#top", "/", "/lab/tree/a%20b.ipynb", "/lab/"])
def test_valid_default_urls(url: str) -> None:
    assert validate_default_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "lab",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/lab/../../etc",
        "/./lab",
        "/lab?x=$HOME",
        "/la b",
        "/lab\n",
        "/" + "a" * URL_MAX,
        None,
    ],
)
def test_invalid_default_urls(url: object) -> None:
    with pytest.raises(InvalidOption) as caught:
        validate_default_url(url)
    assert repr(url)[:40] in caught.value.message


def test_dot_segments_after_the_query_are_data() -> None:
    assert validate_default_url("/lab?path=../x") == "/lab?path=../x"
