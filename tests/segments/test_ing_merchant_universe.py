"""Ingress laws: capped shares, largest remainder, generation invariants."""

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.segments.l1.ingress.merchant_universe import largest_remainder, water_fill
from tests.conftest import shipped_policy


def test_water_fill_caps_and_redistributes_exactly() -> None:
    share = water_fill(np.array([10.0, 1.0, 1.0, 1.0, 1.0]), 0.4)
    assert share[0] == pytest.approx(0.4)
    assert share[1:] == pytest.approx([0.15] * 4)
    assert share.sum() == pytest.approx(1.0, abs=1e-15)


@given(st.lists(st.floats(0.01, 1000.0), min_size=3, max_size=40), st.floats(0.05, 1.0))
def test_water_fill_law(weights: list[float], cap: float) -> None:
    w = np.array(weights)
    if cap * len(w) < 1.0:
        return
    share = water_fill(w, cap)
    assert share.sum() == pytest.approx(1.0, abs=1e-9)
    assert (share <= cap + 1e-12).all()
    free = share < cap - 1e-12
    if free.sum() >= 2:  # unclipped entries keep their relative proportions
        ratio = share[free] / w[free]
        assert ratio == pytest.approx(np.full(ratio.size, ratio[0]))


def test_largest_remainder_exact_and_tie_order() -> None:
    counts = largest_remainder(10, np.array([0.25, 0.25, 0.25, 0.25]), np.zeros(4, dtype=np.int64))
    assert counts.tolist() == [3, 3, 2, 2]  # ties go to the earlier row (iso2 ascending)


@given(st.integers(5, 5000), st.lists(st.floats(0.001, 1.0), min_size=1, max_size=30))
def test_largest_remainder_conserves(total: int, weights: list[float]) -> None:
    w = np.array(weights) / sum(weights)
    floors = np.ones(w.size, dtype=np.int64)
    if floors.sum() > total:
        return
    counts = largest_remainder(total, w, floors)
    assert counts.sum() == total
    assert (counts >= 1).all()
    assert (np.abs(counts - floors - (total - floors.sum()) * w) < 1.0 + 1e-9).all()


def test_sector_of_user_mcc_uses_ranges_and_other() -> None:

    from engine.segments.l1.s1a.common import sector_of

    sectors = shipped_policy("1A", "sectors")
    got = sector_of(pl.Series([5411, 3500, 1234, 5999], dtype=pl.UInt16), sectors).to_list()
    assert got == ["grocery", "travel", "other", "other"]
