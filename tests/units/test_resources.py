"""units/resources.py: the limits, slice cap and AddRef hostd sends, as whole property lists."""

from __future__ import annotations

import pytest

from hostd.units import (
    Property,
    UnitSpec,
    cpu_limit_of,
    keep_loaded,
    limit_properties,
    slice_cap_properties,
    spec_limits,
)
from hostd.units.errors import InvalidSize
from hostd.units.values import Limits
from tests.units.dbus_types import conforms


def test_both_limits() -> None:
    assert limit_properties(2**30, 1.5) == (
        Property("MemoryMax", "t", 2**30),
        Property("MemorySwapMax", "t", 0),
        Property("CPUQuotaPerSecUSec", "t", 1_500_000),
    )


def test_one_limit_leaves_the_other_out() -> None:
    assert limit_properties(None, 0.5) == (Property("CPUQuotaPerSecUSec", "t", 500_000),)
    assert limit_properties(64 * 2**20, None, allow_swap=True) == (
        Property("MemoryMax", "t", 64 * 2**20),
    )
    assert limit_properties(None, None) == ()


def test_a_cpu_amount_out_of_range_is_refused() -> None:
    with pytest.raises(InvalidSize):
        limit_properties(None, 0.0)


def test_slice_cap() -> None:
    assert slice_cap_properties(3 * 2**30) == (
        Property("MemoryAccounting", "b", True),
        Property("MemoryMax", "t", 3 * 2**30),
    )


def test_every_property_has_its_dbus_type() -> None:
    spec = keep_loaded(UnitSpec("jupyter-alice.service", limit_properties(2**30, 2.0)))
    for prop in (*spec.properties, *slice_cap_properties(2**32)):
        assert conforms(prop.signature, prop.value), prop


def test_keep_loaded_adds_addref_last() -> None:
    spec = UnitSpec("jupyter-alice.service", (Property("Type", "s", "exec"),))
    assert keep_loaded(spec) == UnitSpec(
        "jupyter-alice.service",
        (Property("Type", "s", "exec"), Property("AddRef", "b", True)),
    )


def test_spec_limits_reads_back_what_limit_properties_built() -> None:
    spec = UnitSpec("jupyter-alice.service", limit_properties(2**30, 1.25))
    assert spec_limits(spec) == Limits(2**30, 1.25)
    assert spec_limits(UnitSpec("jupyter-alice.service", ())) == Limits(None, None)


def test_spec_limits_skips_a_property_of_another_shape() -> None:
    spec = UnitSpec("jupyter-alice.service", (Property("MemoryMax", "s", "infinity"),))
    assert spec_limits(spec) == Limits(None, None)


def test_cpu_limit_of() -> None:
    assert cpu_limit_of(None) is None
    assert cpu_limit_of(1_234_567) == 1.235
