"""1A.S6 — which candidates become legal countries: Gumbel top-K on renormalised currency weights."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.kernels.blocks import block_uniforms
from engine.segments.l1.s1a.common import home_currency, select_top


def foreign_candidates(ctx: StateContext) -> pl.DataFrame:
    """Open merchants' foreign candidates, κ-weights renormalised over each merchant's candidates."""
    weights = ctx.read("ccy_country_weights", seed_free=True).select("currency", "country_iso", "weight")
    ccy = home_currency(ctx.sealed_table("merchant_universe"), ctx.sealed_table("ref_currencies"))
    iso_num = ctx.sealed_table("ref_countries").select(pl.col("iso2").alias("country_iso"), "iso_num")
    cands = (
        ctx.read("s3_candidates")
        .filter(pl.col("candidate_rank") > 0)
        .select("merchant_id", "country_iso", "candidate_rank")
        .join(ccy.select("merchant_id", "currency"), on="merchant_id", how="left")
        .join(weights, on=["currency", "country_iso"], how="left")
        .join(iso_num, on="country_iso", how="left")
    )
    if cands["weight"].null_count():
        raise EngineError(
            "E_1A_WEIGHT_INVALID",
            "candidate without a currency weight",
            where="ccy_country_weights",
            state=ctx.state,
        )
    return cands.with_columns(
        (pl.col("weight") / pl.col("weight").sum().over("merchant_id")).alias("weight")
    ).sort(["merchant_id", "candidate_rank"])


def gumbel_keys(
    key: tuple[int, int], merchant_id: np.ndarray, iso_num: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """key = ln w − ln(−ln u), u from block ⟨merchant_id, iso_num, 0, 0⟩ lane 0."""
    u = block_uniforms(key, merchant_id, iso_num.astype(np.uint64), 0, 0)[:, 0]
    return np.log(weight) - np.log(-np.log(u))


def run(ctx: StateContext) -> None:
    cands = foreign_candidates(ctx)
    ids = cands["merchant_id"].to_numpy()
    iso_num = cands["iso_num"].to_numpy()
    keys = gumbel_keys(ctx.family_key("gumbel"), ids, iso_num, cands["weight"].to_numpy())
    ctx.record_draws("gumbel", (ids, iso_num), draws=1, blocks=1, value=keys)
    k_cap = ctx.read("s4_foreign_count").select("merchant_id", pl.col("k_cap").cast(pl.Int64))
    out = select_top(cands.with_columns(pl.Series("gumbel_key", keys)), k_cap)
    per_merchant = out.group_by("merchant_id").agg(
        pl.col("selected").sum().alias("n_sel"), pl.col("k_cap").first()
    )
    if per_merchant.filter(pl.col("n_sel") != pl.col("k_cap").fill_null(0)).height:
        raise EngineError(
            "E_1A_SELECTION_COUNT",
            "selected count differs from k_cap",
            where="s6_foreign_set",
            state=ctx.state,
        )
    ctx.publish(
        "s6_foreign_set",
        out.select(
            "merchant_id", "country_iso", "candidate_rank", "weight", "gumbel_key", "selected", "select_order"
        ),
    )
