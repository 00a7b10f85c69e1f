"""1A.S6: Gumbel top-K selection — count, tie rule, and inclusion frequencies."""

import numpy as np
import polars as pl

from engine.segments.l1.s1a.common import select_top
from engine.segments.l1.s1a.s6_foreign_set import gumbel_keys


def test_select_top_count_and_ties_by_rank() -> None:
    cands = pl.DataFrame(
        {
            "merchant_id": pl.Series([1, 1, 1, 2, 2], dtype=pl.UInt64),
            "country_iso": ["AA", "BB", "CC", "AA", "BB"],
            "candidate_rank": pl.Series([1, 2, 3, 1, 2], dtype=pl.UInt16),
            "gumbel_key": [0.5, 0.5, 0.9, 0.1, 0.2],
        }
    )
    k = pl.DataFrame({"merchant_id": pl.Series([1, 2], dtype=pl.UInt64), "k_cap": [2, 0]})
    out = select_top(cands, k)
    assert out["selected"].to_list() == [True, False, True, False, False]
    assert out["select_order"].to_list() == [2, None, 1, None, None]


def test_first_pick_frequency_follows_weights() -> None:
    n = 20_000
    w = np.array([0.5, 0.3, 0.2])
    ids = np.repeat(np.arange(1, n + 1, dtype=np.uint64), 3)
    iso = np.tile(np.array([10, 20, 30]), n)
    keys = gumbel_keys((5, 6), ids, iso, np.tile(w, n)).reshape(n, 3)
    freq = np.bincount(keys.argmax(axis=1), minlength=3) / n
    assert np.abs(freq - w).max() < 0.015
