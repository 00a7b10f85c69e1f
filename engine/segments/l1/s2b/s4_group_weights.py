"""2B.S4 — the daily mix over a merchant's tz groups: base share × day effect, renormalised per day."""

from __future__ import annotations

import polars as pl

from engine.core.errors import EngineError
from engine.core.group_sums import group_sums, sum_over
from engine.core.state import StateContext
from engine.segments.l1.s2b.common import tzids_of


def group_weights(weights: pl.DataFrame, effects: pl.DataFrame) -> pl.DataFrame:
    """base_share = Σ p_weight of the group's sites (a sum of 1 + ulp is a share of 1); p_group = base·γ /
    Σ_groups base·γ. Both sums in a fixed order (group_sums), so the shares do not move with the machine."""
    base = group_sums(weights, ["merchant_id", "tz_index"], ["p_weight"]).select(
        "merchant_id", "tz_index", pl.col("p_weight").clip(upper_bound=1.0).alias("base_share")
    )
    mix = effects.join(base, on=["merchant_id", "tz_index"], how="left", maintain_order="left").with_columns(
        bg=pl.col("base_share") * pl.col("gamma")
    )
    day_total = sum_over(mix, ["merchant_id", "day_index"], "bg")
    return mix.with_columns(p_group=pl.col("bg") / day_total).sort("merchant_id", "day_index", "tz_index")


def run(ctx: StateContext) -> None:
    mix = group_weights(ctx.read("s1_site_weights"), ctx.read("s3_day_effects"))
    tzid = tzids_of(ctx)
    out = mix.select(
        "merchant_id",
        "day_index",
        "utc_date",
        "tz_index",
        pl.col("tz_index").replace_strict(tzid, return_dtype=pl.String).alias("tzid"),
        "base_share",
        "gamma",
        "p_group",
    )
    day_sums = out.group_by("merchant_id", "day_index").agg(
        pl.col("p_group").sum(), pl.col("base_share").sum()
    )
    if not (
        ((day_sums["p_group"] - 1.0).abs() <= 1e-12).all()
        and ((day_sums["base_share"] - 1.0).abs() <= 1e-12).all()
    ):
        raise EngineError(
            "E_2B_WEIGHT_INVALID",
            "a (merchant, day)'s group weights or base shares do not sum to 1 ± 1e-12",
            where="s4_group_weights",
            state=ctx.state,
        )
    ctx.publish("s4_group_weights", out)
