"""2B.S4 on the tiny world: base shares are the sites' weight sums; each day's mix sums to 1."""

from pathlib import Path

import polars as pl

from tests.segments.test_2b_s1_site_weights import part


def test_daily_mix(tiny_world: Path) -> None:
    mix = part(tiny_world, "2B", "s4_group_weights")
    w = part(tiny_world, "2B", "s1_site_weights")
    fx = part(tiny_world, "2B", "s3_day_effects")
    per_day = mix.group_by("merchant_id", "day_index").agg(
        pl.col("p_group").sum(), pl.col("base_share").sum()
    )
    assert (per_day["p_group"] - 1).abs().max() <= 1e-12 and (per_day["base_share"] - 1).abs().max() <= 1e-12
    base = w.group_by("merchant_id", "tz_index").agg(pl.col("p_weight").sum().alias("b"))
    j = mix.join(base, on=["merchant_id", "tz_index"]).join(
        fx.select("merchant_id", "tz_index", "day_index", pl.col("gamma").alias("g")),
        on=["merchant_id", "tz_index", "day_index"],
    )
    assert j.height == mix.height and (j["base_share"] - j["b"]).abs().max() <= 1e-15
    assert (j["gamma"] == j["g"]).all()
    bg = j.with_columns(x=pl.col("b") * pl.col("g")).with_columns(
        again=pl.col("x") / pl.col("x").sum().over("merchant_id", "day_index")
    )
    assert (bg["p_group"] - bg["again"]).abs().max() <= 1e-12
    # a single-group merchant's group carries everything every day
    single = mix.filter(pl.len().over("merchant_id", "day_index") == 1)
    assert (single["p_group"] == 1.0).all()
