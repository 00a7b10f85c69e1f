"""5B.S2 — per scenario, each group's parameters (σ, correlation length, φ, κ by scenario role) and its
latent field: a stationary log-Gaussian AR(1) over the horizon's hours, mean one. The normals come from
`5B.latent` ⟨group_id, k, 0, 0⟩ whatever the scenario, so a stress scenario changes σ and φ, never the noise.

Departure from §2.3: `group_params` is written here, per scenario, not by S1 (S1 runs once per seed and
cannot publish into scenario partitions)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.horizon import Horizon
from engine.core.state import StateContext
from engine.kernels.latent import latent_blocks, latent_field
from engine.segments.l2.s5b.common import BAND, CHANNEL, CLASS, PROFILE_KEY, is_virtual
from engine.segments.l2.s5b.policy import Counts, Latent


def group_params(rows: pl.DataFrame, latent: Latent, counts: Counts, role: str) -> pl.DataFrame:
    """One row per group: its stratum, members and the role's clamped σ, L, φ = exp(−1/L) and κ."""
    groups = (
        rows.group_by("group_id")
        .agg(
            pl.col("demand_class").first(),
            pl.col("channel_group").first(),
            pl.col("virtual_band").first(),
            pl.col("zone_band").first(),
            pl.len().cast(pl.UInt32).alias("members"),
        )
        .sort("group_id")
    )
    cls = groups["demand_class"].cast(pl.String).to_list()
    ch = groups["channel_group"].cast(pl.String).to_list()
    sigma = [latent.sigma.value(role, c, h) for c, h in zip(cls, ch, strict=True)]
    corr = [latent.corr_hours.value(role, c, h) for c, h in zip(cls, ch, strict=True)]
    kappa = [counts.kappa.value(role, c, h) for c, h in zip(cls, ch, strict=True)]
    if latent.model == "none":
        sigma = [0.0] * len(sigma)
    return groups.with_columns(
        pl.Series("sigma", sigma, dtype=pl.Float32),
        pl.Series("corr_hours", corr, dtype=pl.Float32),
        pl.Series("phi", [math.exp(-1.0 / c) for c in corr], dtype=pl.Float64),
        pl.Series("kappa", kappa, dtype=pl.Float32),
    )


def run(ctx: StateContext) -> None:
    assert ctx.scenario is not None
    horizon: Horizon = ctx.policy("CFG/horizon.yaml")
    latent: Latent = ctx.policy("5B/latent.yaml")
    counts: Counts = ctx.policy("5B/counts.yaml")
    role = ctx.policy(f"5A/scenarios/{ctx.scenario}.yaml").role
    profile = ctx.sealed_table("merchant_zone_profile").select(*PROFILE_KEY, "demand_class", "virtual_mode")
    rows = (
        ctx.read("grouping")
        .join(profile, on=PROFILE_KEY, how="left")
        .with_columns(
            pl.when(is_virtual())
            .then(pl.lit("VIRTUAL"))
            .otherwise(pl.lit("PHYSICAL"))
            .cast(BAND)
            .alias("virtual_band"),
            pl.col("demand_class").cast(CLASS),
            pl.col("channel_group").cast(CHANNEL),
        )
    )
    params = group_params(rows, latent, counts, role)
    h = 24 * horizon.days
    ids = params["group_id"].to_numpy().astype(np.uint64)
    # σ and φ as the f32/f64 values published, so S3 and S5 recompute from the table itself
    sigma = params["sigma"].to_numpy().astype(np.float64)
    phi = params["phi"].to_numpy()
    z, factor, clipped = latent_field(ctx.family_key("latent"), ids, sigma, phi, h, latent.factor_clip)
    if not (np.isfinite(z).all() and np.isfinite(factor).all()):
        raise EngineError(
            "E_5B_LATENT_NUMERIC", "non-finite latent values", where="latent_field", state=ctx.state
        )
    if latent.model == "log_gaussian_ar1":
        per = latent_blocks(1, h)
        ctx.record_draws("latent", (ids, 0, 0, 0), draws=4 * per, blocks=per, value=factor.mean(axis=1))
    ctx.count("latent_clipped", int(clipped.sum()))
    ctx.publish("group_params", params)
    ctx.publish(
        "latent_field",
        pl.DataFrame(
            {
                "group_id": np.repeat(ids.astype(np.uint32), h),
                "bucket_index": np.tile(np.arange(h, dtype=np.uint32), ids.size),
                "z": z.ravel().astype(np.float32),
                "factor": factor.ravel().astype(np.float32),
                "clipped": clipped.ravel(),
            }
        ),
    )
