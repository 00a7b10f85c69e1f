"""1A.S5: currency weights sum to one, area vs spill split, affinity and hub boost."""

import polars as pl
import pytest

from engine.segments.l1.s1a.s5_currency_weights import currency_weights, neumaier_sum
from tests.conftest import shipped_policy

POLICY = shipped_policy("1A", "currency_weights")


def test_neumaier_sum_beats_naive_cancellation() -> None:
    import numpy as np

    assert neumaier_sum(np.array([1.0, 1e100, 1.0, -1e100])) == 2.0


def test_area_and_spill_shares() -> None:
    market = pl.DataFrame(
        {
            "iso2": ["AA", "BB", "CC", "DD"],
            "region": ["R1", "R1", "R1", "R2"],
            "subregion": ["S1", "S1", "S2", "S3"],
            "gdp_usd": [300.0, 100.0, 100.0, 100.0],
        }
    )
    currencies = pl.DataFrame({"iso2": ["AA", "BB", "CC", "DD"], "currency": ["EUR", "EUR", "XXX", "YYY"]})
    out = currency_weights(market, currencies, POLICY, hubs=["DD"])
    eur = out.filter(pl.col("currency") == "EUR")
    assert eur["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    w = dict(zip(eur["country_iso"], eur["weight"], strict=True))
    assert w["AA"] == pytest.approx(0.85 * 0.75)
    assert w["BB"] == pytest.approx(0.85 * 0.25)
    v_cc = 100.0**0.7 * 2.0  # same region as the area
    v_dd = 100.0**0.7 * 1.0 * 2.0  # other region, hub
    assert w["CC"] == pytest.approx(0.15 * v_cc / (v_cc + v_dd))
    assert set(eur.filter(pl.col("component") == "AREA")["country_iso"]) == {"AA", "BB"}
