"""5A's RNG families re-derived for validation's replay law (engine.core.validation), in plain Python from
numpy's Philox blocks (`PhiloxBlocks`): nothing here calls a 5A state or a numba kernel."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from engine.core.validation import PhiloxBlocks, Replay, one_block_each, u01, with_counter
from engine.segments.l2.s5a.policy import DemandScale, Promo


def scale(profile: pl.DataFrame, pol: DemandScale) -> Replay:
    """5A.scale: u(w0) of ⟨merchant_id, zone_code, channel_code, 0⟩ → the Pareto per-site volume, and
    weekly_raw = x · zone_site_count · role_mult · channel_mult · n_outlets^β · share (as published)."""
    rows = with_counter(
        profile.with_columns(pl.col("channel_group").to_physical().cast(pl.UInt64).alias("channel_code")),
        "merchant_id",
        "zone_code",
        "channel_code",
    )

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        out = []
        cols = ("demand_class", "zone_role", "channel_group", "n_outlets_total", "zone_site_count", "share")
        for *c, cls, role, chan, outlets, sites, share in sample.select(
            "c0", "c1", "c2", "c3", *(pl.col(k).cast(pl.String) if k in cols[:3] else pl.col(k) for k in cols)
        ).iter_rows():
            u = u01(gen.block(*c)[0])
            median, alpha = pol.classes[cls].median_weekly_per_site, pol.classes[cls].pareto_alpha
            x = min(median * 2.0 ** (-1.0 / alpha) * (1.0 - u) ** (-1.0 / alpha), pol.per_site_clip * median)
            role_m, chan_m = pol.zone_roles.multipliers[role], pol.channel_multipliers[chan]
            out.append(x * float(sites) * role_m * chan_m * float(outlets) ** pol.brand_exponent * share)
        return pl.concat(
            [pl.DataFrame({"weekly_raw": pl.Series(out, dtype=pl.Float64)}), one_block_each(sample)],
            how="horizontal",
        )

    return Replay("5A.scale", rows, ("weekly_raw",), rederive, one_block_each)


def shape_variant(merchants: pl.DataFrame) -> Replay:
    """5A.shape_variant: variant = ⌊3·u(w0)⌋ of ⟨merchant_id, 0, 0, 0⟩ (one per merchant)."""
    rows = with_counter(merchants, "merchant_id")

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        v = [
            min(int(3.0 * u01(gen.block(*c)[0])), 2)
            for c in sample.select("c0", "c1", "c2", "c3").iter_rows()
        ]
        return pl.concat(
            [pl.DataFrame({"variant": pl.Series(v, dtype=pl.Int64)}), one_block_each(sample)],
            how="horizontal",
        )

    return Replay("5A.shape_variant", rows, ("variant",), rederive, one_block_each)


def poisson_inverse(u: float, mean: float, kmax: int) -> int:
    """The smallest n with F(n) ≥ u, at most kmax (F summed term by term)."""
    term = math.exp(-mean)
    cdf = term
    n = 0
    while cdf < u and n < kmax:
        n += 1
        term = term * mean / n
        cdf += term
    return n


def promo_key(promos: list[tuple[int, int, float]]) -> str:
    """A merchant's promotions as one comparable text: count, then (start day, days, f32 amplitude) sorted."""
    return ";".join([str(len(promos)), *(f"{s},{d},{a!r}" for s, d, a in sorted(promos))])


def promo(merchants: pl.DataFrame, pol: Promo, days: int) -> Replay:
    """5A.promo, one draw event per merchant and scenario: the count on u(w0) of ⟨m, 0, 0, 0⟩ (Poisson(rate ·
    days/28) by inversion, capped), then per promo k = 1..n the block ⟨m, k, 0, 0⟩: start ⌊u0·days⌋, duration
    lo + ⌊u1·(hi − lo + 1)⌋, amplitude a + (b − a)·u2 as f32. The published events carry no k, so a merchant's
    promotions are compared as a set (`promos`: promo_key of its published PROMO events)."""
    rows = with_counter(merchants, "merchant_id")
    lo, hi = pol.duration_days
    a, b = pol.amplitude
    mean = pol.rate_per_28d * days / 28.0

    def rederive(sample: pl.DataFrame, gen: PhiloxBlocks) -> pl.DataFrame:
        keys, n_all = [], []
        for c in sample.select("c0", "c1", "c2", "c3").iter_rows():
            n = poisson_inverse(u01(gen.block(*c)[0]), mean, pol.max_per_merchant)
            found = []
            for k in range(1, n + 1):
                u0, u1, u2 = (u01(x) for x in gen.block(c[0], k, 0, 0)[:3])
                amp = float(np.float32(a + (b - a) * u2))
                found.append((math.floor(u0 * days), lo + math.floor(u1 * (hi - lo + 1)), amp))
            keys.append(promo_key(found))
            n_all.append(n)
        n_arr = np.asarray(n_all, dtype=np.int64)
        return pl.DataFrame({"promos": keys, **usage_of(n_arr)})

    def usage(rows: pl.DataFrame) -> pl.DataFrame:
        return pl.DataFrame(usage_of(rows["n"].to_numpy().astype(np.int64)))

    return Replay("5A.promo", rows, ("promos",), rederive, usage)


def usage_of(n: np.ndarray) -> dict[str, np.ndarray]:
    """A merchant's count block (one lane), then one block of three lanes per promotion (own counters)."""
    return {"draws": 1 + 3 * n, "blocks": 1 + n, "streams": 1 + n}
