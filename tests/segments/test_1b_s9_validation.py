"""1B.S9: the spatial realism statistics."""

import numpy as np
import polars as pl

from engine.segments.l1.s1b.s9_validation import distinct_ratio, stripe_z, tile_chi2_p


def weights() -> pl.DataFrame:
    return pl.DataFrame({"tile_id": pl.Series(range(20), dtype=pl.UInt64), "weight": np.full(20, 0.05)})


def test_chi2_accepts_fair_draws_and_rejects_skewed_ones() -> None:
    fair = pl.DataFrame({"tile_id": np.repeat(np.arange(20), 50)})
    skewed = pl.DataFrame({"tile_id": np.repeat(np.arange(2), 500)})
    assert tile_chi2_p(fair, weights()) > 0.99
    assert tile_chi2_p(skewed, weights()) < 1e-12


def test_stripe_z_flags_one_overfull_row() -> None:
    index = pl.DataFrame({"tile_id": pl.Series(range(20), dtype=pl.UInt64), "row": np.arange(20) // 4})
    even = pl.DataFrame({"raster_row": np.repeat(np.arange(5), 40)})
    stripe = pl.DataFrame({"raster_row": np.repeat([0], 200)})
    assert stripe_z(even, weights(), index) < 1.0
    assert stripe_z(stripe, weights(), index) > 6.0


def test_distinct_ratio_expectation() -> None:
    used, expected = distinct_ratio(pl.DataFrame({"tile_id": np.arange(20)}), weights())
    assert used == 20 and abs(expected - 20 * (1 - 0.95**20)) < 1e-9
