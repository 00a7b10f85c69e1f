"""2B.S3 — a mean-1 day effect per (merchant, tz group, UTC day) of the horizon: day-to-day mix variation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.horizon import Horizon
from engine.core.state import StateContext
from engine.kernels.blocks import block_uniforms
from engine.kernels.samplers import lognormal_mean1, normals_from_u
from engine.segments.l1.s2b.common import tier_values
from engine.segments.l1.s2b.policy import DayEffects


def groups_of(weights: pl.DataFrame) -> pl.DataFrame:
    """(merchant_id, tz_index) with the merchant's site count, in key order."""
    return (
        weights.with_columns(n_sites=pl.len().over("merchant_id"))
        .group_by("merchant_id", "tz_index")
        .agg(pl.col("n_sites").first())
        .sort("merchant_id", "tz_index")
    )


def horizon_days(horizon: Horizon) -> pl.DataFrame:
    start = horizon.start()
    return pl.DataFrame(
        {
            "day_index": pl.Series(range(horizon.days), dtype=pl.UInt16),
            "utc_date": [(start + dt.timedelta(days=d)).date() for d in range(horizon.days)],
        }
    )


def run(ctx: StateContext) -> None:
    policy: DayEffects = ctx.policy("2B/day_effects.yaml")
    horizon: Horizon = ctx.policy("CFG/horizon.yaml")
    groups = groups_of(ctx.read("s1_site_weights"))
    rows = groups.join(horizon_days(horizon), how="cross").sort("merchant_id", "tz_index", "day_index")
    mids, tz, day = (rows[c].to_numpy().astype(np.uint64) for c in ("merchant_id", "tz_index", "day_index"))
    sigma = tier_values(
        rows["n_sites"].to_numpy(),
        [t.min_sites for t in policy.sigma],
        np.array([t.sigma for t in policy.sigma]),
    )
    u = block_uniforms(ctx.family_key("day_effect"), mids, tz, day, 0, lanes=2)
    gamma = lognormal_mean1(normals_from_u(u), sigma)
    lo, hi = policy.clip
    clipped = (gamma < lo) | (gamma > hi)
    gamma = np.clip(gamma, lo, hi)
    ctx.record_draws("day_effect", (mids, tz, day), draws=2, blocks=1, value=gamma)
    if rows.height != groups.height * horizon.days or not np.isfinite(gamma).all():
        raise EngineError(
            "E_2B_DAY_COVERAGE",
            "day effects do not cover every (merchant, group) × horizon day with a finite value",
            where="s3_day_effects",
            state=ctx.state,
        )
    out = rows.select(
        "merchant_id",
        pl.col("tz_index").cast(pl.UInt16),
        "day_index",
        "utc_date",
        pl.Series("gamma", gamma),
        pl.Series("clipped", clipped),
        pl.lit(1, dtype=pl.UInt8).alias("blocks"),
    )
    ctx.publish("s3_day_effects", out)
    ctx.count("gamma_clipped", int(clipped.sum()))
