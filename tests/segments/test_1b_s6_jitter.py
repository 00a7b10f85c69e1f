"""1B.S6: jitter stays in its cell and its country; fallback is deterministic; order does not matter."""

import numpy as np
import polars as pl
import shapely

from engine.segments.l1.s1b.s6_jitter import jitter_country

KEY = (123, 456)
COUNTRY = shapely.Polygon([(0.0, 0.0), (3.5, 0.0), (0.0, 3.5)])  # a right triangle
shapely.prepare(COUNTRY)


CELLS = [(c, r) for r in range(3) for c in range(3) if c + r <= 2]  # cells whose centre is in the triangle


def sites(n: int) -> pl.DataFrame:
    col = np.array([CELLS[i % len(CELLS)][0] for i in range(n)])
    row = np.array([CELLS[i % len(CELLS)][1] for i in range(n)])
    return pl.DataFrame(
        {
            "merchant_id": pl.Series(np.arange(1, n + 1), dtype=pl.UInt64),
            "site_order": pl.Series(np.ones(n), dtype=pl.UInt32),
            "lon_min": col.astype(float),
            "lat_min": row.astype(float),
            "lon_max": col + 1.0,
            "lat_max": row + 1.0,
            "interior": (col + row) <= 1,  # cells on the diagonal straddle the hypotenuse
        }
    )


def test_points_in_cell_and_country_and_replayable() -> None:
    s = sites(300)
    res = jitter_country(KEY, s, COUNTRY, 42, 64)
    assert shapely.contains_xy(COUNTRY, res["lon"], res["lat"]).all()
    assert ((res["lon"] >= s["lon_min"].to_numpy()) & (res["lon"] <= s["lon_max"].to_numpy())).all()
    assert ((res["lat"] >= s["lat_min"].to_numpy()) & (res["lat"] <= s["lat_max"].to_numpy())).all()
    perm = np.random.default_rng(0).permutation(300)  # test-side shuffling only
    again = jitter_country(KEY, s[perm], COUNTRY, 42, 64)
    assert np.array_equal(again["lon"], res["lon"][perm]) and np.array_equal(
        again["attempts"], res["attempts"][perm]
    )


def test_fallback_after_max_attempts_is_on_cell_and_country() -> None:
    s = sites(60)
    res = jitter_country(KEY, s, COUNTRY, 42, 1)  # one try only: some sites must fall back
    fell = res["fallback"]
    assert fell.any()
    assert shapely.contains_xy(COUNTRY, res["lon"][fell], res["lat"][fell]).all()
