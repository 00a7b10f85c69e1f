"""3A's RNG families re-derived for validation's replay law (engine.core.validation), from layer1 3A.S1/S3.

Nothing here calls a 3A state or a numba kernel: blocks come from numpy's Philox (`PhiloxBlocks`, `Lanes`)
and the gamma sampler is 1A's plain-Python re-derivation of Marsaglia–Tsang.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.validation import Lanes, PhiloxBlocks, Replay, one_block_each, u01, with_counter
from engine.segments.l1.s1a.replay import gamma

DIRICHLET_BLOCK_WORD = 3


def escalate(drawn: pl.DataFrame, theta_mix: float) -> Replay:
    """3A.S1: a theta_mix pair is escalated iff u(w0) of ⟨merchant_id, iso_num, 0, 0⟩ < theta_mix.
    `drawn` holds the pairs whose first matching rule escalates with theta_mix, with their iso_num."""
    rows = with_counter(drawn, "merchant_id", "iso_num")

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        flags = [u01(gen.block(*c)[0]) < theta_mix for c in sample.select("c0", "c1", "c2", "c3").iter_rows()]
        return pl.concat(
            [pl.DataFrame({"is_escalated": pl.Series(flags, dtype=pl.Boolean)}), one_block_each(sample)],
            how="horizontal",
        )

    return Replay("3A.escalate", rows, ("is_escalated",), rederive, one_block_each)


def zone_dirichlet(shares: pl.DataFrame) -> Replay:
    """3A.S3: G ~ Gamma(alpha, 1) on the lanes of ⟨merchant_id, iso_num, tz_index, d⟩, d = 0, 1, … per
    component. Replayed in full: the published `blocks` alone cannot give each event's lanes."""
    rows = with_counter(shares, "merchant_id", "iso_num", "tz_index")

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        g, draws, blocks = [], [], []
        for alpha, *counter in sample.select("alpha", "c0", "c1", "c2", "c3").iter_rows():
            lanes = Lanes(gen, counter, DIRICHLET_BLOCK_WORD)
            g.append(gamma(lanes, alpha))
            draws.append(lanes.draws)
            blocks.append(lanes.blocks)
        return pl.DataFrame(
            {
                "gamma_draw": pl.Series(g, dtype=pl.Float64),
                "blocks": pl.Series(blocks, dtype=pl.Int64),
                "draws": pl.Series(draws, dtype=pl.Int64),
                "streams": np.ones(sample.height, dtype=np.int64),
            }
        )

    return Replay("3A.zone_dirichlet", rows, ("gamma_draw", "blocks"), rederive)
