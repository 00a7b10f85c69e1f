"""3A.S3 — Dirichlet demand shares over the zones of each escalated pair, centred on a blend of its site
shares and its country's prior restricted to its zones."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.state import StateContext
from engine.kernels import njit, prange
from engine.kernels.philox import stream_blocks, stream_draws, stream_new
from engine.kernels.samplers import check_sampler_bound, gamma
from engine.segments.l1.s3a.pairs import PAIR, refuse_pairs
from engine.segments.l1.s3a.policy import ZonePriors

BLOCK_WORD = 3  # counter ⟨merchant_id, iso_num, tz_index, d⟩: one stream per component, d its block index
SUM_TOL = 1e-12


@njit(cache=True, nogil=True, parallel=True)
def _gammas(k0, k1, mid, iso, tzi, alpha, out, draws, blocks):  # type: ignore[no-untyped-def]
    for i in prange(mid.shape[0]):
        st = stream_new(k0, k1, mid[i], iso[i], tzi[i], np.uint64(0), BLOCK_WORD)
        out[i] = gamma(st, alpha[i])
        draws[i] = stream_draws(st)
        blocks[i] = stream_blocks(st)


def component_gammas(
    key: tuple[int, int], mid: np.ndarray, iso: np.ndarray, tzi: np.ndarray, alpha: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """G ~ Gamma(α, 1) per component on its own counter; with the lanes and blocks each consumed."""
    n = mid.size
    out, draws, blocks = np.empty(n), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    words = [np.ascontiguousarray(w, dtype=np.uint64) for w in (mid, iso, tzi)]
    _gammas(
        np.uint64(key[0]),
        np.uint64(key[1]),
        *words,
        np.ascontiguousarray(alpha, np.float64),
        out,
        draws,
        blocks,
    )
    check_sampler_bound(np.isnan(out), "3A.zone_dirichlet", state="3A.S3")
    return out, draws, blocks


def dirichlet_params(zones: pl.DataFrame, pol: ZonePriors) -> pl.DataFrame:
    """base_share b = λ·site_share + (1 − λ)·q (q: the prior restricted to the pair's zones, even where the
    prior gives them nothing) and α = max(κ·b, alpha_floor), κ = clamp(kappa0 + kappa_per_site·site_count)."""
    lam, (lo, hi) = pol.blend_site_share, pol.kappa_range
    prior_sum = pl.col("prior_share").sum().over(PAIR)
    q = pl.when(prior_sum > 0).then(pl.col("prior_share") / prior_sum).otherwise(1.0 / pl.len().over(PAIR))
    kappa = (pol.kappa0 + pol.kappa_per_site * pl.col("site_count").cast(pl.Float64)).clip(lo, hi)
    return zones.with_columns(
        (lam * pl.col("site_share") + (1.0 - lam) * q).alias("base_share")
    ).with_columns(pl.max_horizontal(kappa * pl.col("base_share"), pl.lit(pol.alpha_floor)).alias("alpha"))


def run(ctx: StateContext) -> None:
    pol: ZonePriors = ctx.policy("3A/zone_priors.yaml")
    pairs = ctx.read("s1_pairs").filter(pl.col("is_escalated")).select(*PAIR, "site_count")
    priors = ctx.read("s2_zone_priors", seed_free=True).select(
        pl.col("country_iso").alias("legal_country_iso"), "tz_index", "prior_share"
    )
    zones = (
        ctx.read("s1_pair_zones")
        .join(pairs, on=PAIR, how="inner")
        .join(priors, on=["legal_country_iso", "tz_index"], how="left")
        .with_columns(pl.col("prior_share").fill_null(0.0))
        .sort([*PAIR, "tz_index"])
    )
    zones = dirichlet_params(zones, pol)
    iso_num = dict(ctx.sealed_table("ref_countries").select("iso2", "iso_num").iter_rows())
    nums = zones["legal_country_iso"].replace_strict(iso_num, return_dtype=pl.UInt64).to_numpy()
    mid, tzi = zones["merchant_id"].to_numpy(), zones["tz_index"].to_numpy()
    g, draws, blocks = component_gammas(
        ctx.family_key("zone_dirichlet"), mid, nums, tzi, zones["alpha"].to_numpy()
    )
    ctx.record_draws("zone_dirichlet", (mid, nums, tzi, 0), draws=draws, blocks=blocks, value=g)
    out = zones.with_columns(
        pl.Series("gamma_draw", g), pl.Series("blocks", blocks).cast(pl.UInt16)
    ).with_columns((pl.col("gamma_draw") / pl.col("gamma_draw").sum().over(PAIR)).alias("share"))
    check = out.group_by(PAIR).agg(pl.col("gamma_draw").sum().alias("g"), pl.col("share").sum().alias("s"))
    bad = check.filter(~(pl.col("g") > 0) | ((pl.col("s") - 1.0).abs() > SUM_TOL))
    refuse_pairs(
        bad,
        "E_3A_SHARE_SUM",
        "whose Dirichlet shares do not sum to 1",
        "Σ G = {g!r}, Σ share = {s!r}",
        where="s3_zone_shares",
        fix="raise alpha_floor in zone_priors.yaml so no pair's gammas all underflow",
        state=ctx.state,
    )
    ctx.publish(
        "s3_zone_shares",
        out.select(*PAIR, "tz_index", "base_share", "alpha", "gamma_draw", "share", "blocks"),
    )
