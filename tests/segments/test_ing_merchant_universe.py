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
    got = sector_of(pl.Series([5411, 3500, 1234, 5999, 8398], dtype=pl.UInt16), sectors).to_list()
    assert got == ["grocery", "travel", "other", "retail_general", "other"]


def test_sector_lists_follow_real_frequency_and_hold_the_catch_alls() -> None:
    """Amendment 3: the most common codes lead, the catch-alls are listed, the rare codes come last."""
    sectors = {k: v.mccs for k, v in shipped_policy("1A", "sectors").sectors.items()}
    listed = {code for codes in sectors.values() for code in codes}
    assert {5999, 5311, 5331, 5912, 7399, 8999} <= listed
    assert sectors["retail_general"][:3] == [5999, 5311, 5331]
    assert sectors["health"][0] == 5912 and sectors["grocery"][0] == 5411 and sectors["travel"][0] == 7011
    assert sectors["grocery"][-1] == 5422 and sectors["fuel"][-1] == 5983


@pytest.fixture(scope="module")
def big_universe() -> pl.DataFrame:
    """50,000 merchants from the shipped policies and the real country tables."""
    from engine.refdata.countries import country_table
    from engine.refdata.macro import macro_table
    from engine.segments.l1.ingress.merchant_universe import generate

    policy = shipped_policy("ING", "merchant_universe").model_copy(update={"n_merchants": 50_000})
    universe, _ = generate(
        policy,
        shipped_policy("1A", "sectors"),
        shipped_policy("1A", "hurdle_nb"),
        country_table()[0],
        macro_table()[0],
        (0xABCDEF, 0x123456),
    )
    return universe


# amendment 2: barbers, laundries, bars, supermarkets, fuel, car washes, transit — and the remote trades
IN_PERSON = [5411, 5462, 5541, 5542, 5813, 7211, 7216, 7230, 7542, 4111]
REMOTE = [4511, 4722, 5815, 5816, 5817, 5818, 4814, 4899]


def test_shipped_channel_policy_by_mcc() -> None:
    by_mcc = shipped_policy("ING", "merchant_universe").mcc_p_cnp()
    assert all(by_mcc[m] <= 0.02 for m in IN_PERSON)
    assert all(by_mcc[m] >= 0.80 for m in REMOTE) and all(by_mcc[m] >= 0.80 for m in (3000, 3150, 3299))
    assert [by_mcc[m] for m in (5541, 5813, 7211, 7230, 4111)] == [0.0] * 5
    assert 5812 not in by_mcc  # restaurants keep their sector's p_cnp (delivery and online orders)


def test_in_person_trades_are_never_card_not_present(big_universe: pl.DataFrame) -> None:
    """Under the shipped policy an MCC with p = 0 has no CNP merchant, however many there are; the 2 %
    codes stay at or under 2 % × the largest GDP tilt (1.2); the remote trades are mostly CNP."""
    cnp = big_universe.group_by("mcc").agg(
        (pl.col("channel") == "card_not_present").mean().alias("cnp"), pl.len().alias("n")
    )
    share = dict(cnp.select("mcc", "cnp").iter_rows())
    count = dict(cnp.select("mcc", "n").iter_rows())
    for code in (5541, 5542, 5813, 7211, 7230, 4111):
        assert count[code] > 0 and share[code] == 0.0, code
    assert count[5411] > 2_000 and share[5411] < 0.024 + 3 * (0.024 / count[5411]) ** 0.5
    for code in (5818, 5817, 4511, 4814):
        assert count[code] > 30 and share[code] > 0.6, code
    overall = float((big_universe["channel"] == "card_not_present").mean())
    assert 0.15 <= overall <= 0.45  # 1A.R15's band
