"""2B.S3 on the tiny world: every (merchant, group) × horizon day, mean 1, one γ re-derived by hand."""

import datetime as dt
import math
from pathlib import Path

import polars as pl

from engine.core.rng import family_key
from engine.core.validation import PhiloxBlocks, u01
from tests.conftest import tiny_plan
from tests.segments.test_2b_s1_site_weights import part

DAYS = 14  # the tiny preset's horizon, from 2026-03-02


def test_coverage_dates_and_mean(tiny_world: Path) -> None:
    fx = part(tiny_world, "2B", "s3_day_effects")
    groups = part(tiny_world, "2B", "s1_site_weights").select("merchant_id", "tz_index").unique()
    assert fx.height == groups.height * DAYS
    assert fx.select("merchant_id", "tz_index", "day_index").n_unique() == fx.height
    first = fx.filter(pl.col("day_index") == 3)["utc_date"].unique().to_list()
    assert first == [dt.date(2026, 3, 5)]
    assert abs(fx["gamma"].mean() - 1.0) < 0.02 and fx["gamma"].min() >= 0.40 and fx["gamma"].max() <= 2.50


def test_one_day_effect_by_hand(tiny_world: Path) -> None:
    fx = part(tiny_world, "2B", "s3_day_effects")
    n_sites = part(tiny_world, "2B", "s1_site_weights").group_by("merchant_id").len()
    key = family_key(42, tiny_plan(tiny_world)["2B"].parameter_hash, "2B.day_effect")
    gen = PhiloxBlocks(key)
    row = fx.join(n_sites, on="merchant_id").sort("len", "merchant_id").row(-1, named=True)
    sigma = 0.18 if row["len"] < 4 else 0.14 if row["len"] < 25 else 0.10
    w0, w1, _, _ = gen.block(row["merchant_id"], row["tz_index"], row["day_index"], 0)
    z = math.sqrt(-2 * math.log(u01(w0))) * math.cos(2 * math.pi * u01(w1))
    assert row["gamma"] == min(max(math.exp(sigma * z - sigma * sigma / 2), 0.40), 2.50)
