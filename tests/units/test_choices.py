"""hostd.units.choices: the start-time choices as they cross the wire."""

from __future__ import annotations

import pytest

from hostd.units.choices import ProfileView, describe_limits, profiles_body, profiles_from_body

GPU = ProfileView(
    slug="gpu",
    display_name="GPU",
    description="One GPU",
    default=True,
    mem_limit_bytes=16 * 2**30,
    cpu_limit=4.0,
    gpus=1,
)


def test_a_view_goes_through_json_and_back() -> None:
    plain = ProfileView(slug="plain", display_name="Plain")
    body = profiles_body([GPU, plain])
    assert body["profiles"][0] == {
        "slug": "gpu",
        "display_name": "GPU",
        "description": "One GPU",
        "default": True,
        "mem_limit_bytes": 16 * 2**30,
        "cpu_limit": 4.0,
        "gpus": 1,
    }
    assert profiles_from_body(body) == [GPU, plain]


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"profiles": {}},
        {"profiles": [{"slug": "x"}]},
        {"profiles": [{**GPU.to_dict(), "gpus": "1"}]},
    ],
)
def test_a_malformed_body_is_refused(body: object) -> None:
    with pytest.raises((TypeError, KeyError)):
        profiles_from_body(body)


def test_limits_for_people() -> None:
    assert describe_limits(GPU) == "16.0G memory · 4 CPU · 1 GPU"
    assert describe_limits(ProfileView(slug="a", display_name="A", gpus=2)) == (
        "no memory limit · no CPU limit · 2 GPUs"
    )
    assert describe_limits(ProfileView(slug="b", display_name="B", cpu_limit=1)) == (
        "no memory limit · 1 CPU"
    )
