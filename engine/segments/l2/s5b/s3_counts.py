"""5B.S3 — integer arrivals per (merchant, zone, channel group, UTC hour) of this shard, streamed merchant
batch by merchant batch over 5A's scenario intensities:

    λ = lambda_scenario × latent factor[group, b] × g,   g = p_group(m, day(b), tz) / base_share(m, tz)

(2B's day-level zone weights: each merchant-day total stays, shifted between zones as 2B drew it), then NB2
(Gamma(κ, 1/κ) then Poisson) or Poisson per cell from `5B.count` ⟨merchant_id, zone_code, b << 8 | channel,
i⟩. Only cells with a count are written; `cell_totals` sums every cell, zero or not."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.group_sums import group_sums
from engine.core.horizon import Horizon
from engine.core.state import StateContext
from engine.kernels.bucket_counts import LAW_NB2, LAW_POISSON, bucket_counts
from engine.kernels.samplers import POISSON_BOUND, check_sampler_bound
from engine.segments.l2.s5b.batches import part_rows, unit_batches
from engine.segments.l2.s5b.common import BAND, CHANNEL, PROFILE_KEY, is_virtual, world_enum
from engine.segments.l2.s5b.policy import Counts

BATCH_ROWS = 4_000_000
READ = [*PROFILE_KEY, "zone_code", "zone_rank", "bucket_index", "lambda_scenario"]
# a 5A row's cell by numbers (zone_code holds the country and the zone), so the batch joins never touch text
CELL_KEY = ["merchant_id", "zone_code", "channel_code"]
DISPERSION_MIN_LAMBDA = 5.0
COUNT_COLUMNS = [
    "merchant_id",
    "bucket_index",
    "legal_country_iso",
    "tzid",
    "channel_group",
    "zone_code",
    "zone_rank",
    "routing",
    "lambda_realised",
    "count",
]
CHANNEL_CODE = (pl.col("channel_group") == "CNP").cast(pl.UInt8).alias("channel_code")


def realised_lambda(batch: pl.DataFrame, factor: np.ndarray, day_weights: pl.DataFrame | None) -> np.ndarray:
    """λ per row: λ_scenario × factor[group_id, bucket] × g (g = 1 without day effects or for a
    merchant-zone 2B has no multi-zone weights for)."""
    lam = batch["lambda_scenario"].to_numpy().astype(np.float64)
    lam = lam * factor[batch["group_id"].to_numpy(), batch["bucket_index"].to_numpy()]
    if day_weights is None:
        return lam
    keyed = batch.select(
        "merchant_id",
        (pl.col("bucket_index") // 24).cast(pl.UInt16).alias("day_index"),
        (pl.col("zone_code") & 0xFFFF).cast(pl.UInt16).alias("tz_index"),
    ).join(day_weights, on=["merchant_id", "day_index", "tz_index"], how="left", maintain_order="left")
    return lam * keyed["g"].fill_null(1.0).to_numpy()


def day_weights_of(ctx: StateContext, use: bool, shard: int | None = None) -> pl.DataFrame | None:
    """2B's g = p_group / base_share per (merchant, day, tz_index), for one shard's merchants if given (a
    smaller table to join every batch against); None without day effects."""
    if not use:
        return None
    weights = ctx.sealed_table("s4_group_weights")
    if shard is not None:
        weights = weights.filter(pl.Series(ctx.shard_of(weights["merchant_id"].to_numpy()) == shard))
    return weights.select(
        "merchant_id", "day_index", "tz_index", (pl.col("p_group") / pl.col("base_share")).alias("g")
    )


def cell_table(grouping: pl.DataFrame, profile: pl.DataFrame, mine: np.ndarray) -> pl.DataFrame:
    """This shard's profile rows by CELL_KEY: group, routing, and the key texts as the run's Enums."""
    country, tzid = world_enum(profile["legal_country_iso"]), world_enum(profile["tzid"])
    text = [pl.col(c).cast(pl.String) for c in PROFILE_KEY[1:]]
    rows = grouping.with_columns(text).join(
        profile.filter(pl.Series(mine)).select("merchant_id", *text, "zone_code", "virtual_mode"),
        on=PROFILE_KEY,
    )
    return rows.select(
        "merchant_id",
        "zone_code",
        CHANNEL_CODE,
        "group_id",
        pl.when(is_virtual())
        .then(pl.lit("VIRTUAL"))
        .otherwise(pl.lit("PHYSICAL"))
        .cast(BAND)
        .alias("routing"),
        pl.col("legal_country_iso").cast(country),
        pl.col("tzid").cast(tzid),
        pl.col("channel_group").cast(CHANNEL),
    )


def cell_totals(batch: pl.DataFrame) -> pl.DataFrame:
    """Per profile row of the batch: Σλ_scenario, Σλ_realised (float sums in a fixed order: group_sums),
    Σcount, non-zero buckets, blocks."""
    counts = batch.group_by(PROFILE_KEY).agg(
        pl.col("count").sum().cast(pl.UInt64).alias("count_sum"),
        (pl.col("count") > 0).sum().cast(pl.UInt32).alias("nonzero_buckets"),
        pl.col("blocks").sum().cast(pl.UInt64).alias("rng_blocks"),
    )
    lambdas = group_sums(batch, PROFILE_KEY, ["lambda_scenario", "lam"]).rename(
        {"lambda_scenario": "lambda_scenario_sum", "lam": "lambda_realised_sum"}
    )
    return lambdas.join(counts, on=PROFILE_KEY, how="left", maintain_order="left").sort(PROFILE_KEY)


def check_cap(ctx: StateContext, batch: pl.DataFrame, count: np.ndarray, cap: int) -> None:
    over = count > cap
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise EngineError(
            "E_5B_COUNT_CAP",
            f"{int(over.sum())} cells above max_count_per_cell {cap}, e.g. merchant "
            f"{batch['merchant_id'][i]} bucket {batch['bucket_index'][i]}: {count[i]}",
            where="5B/counts.yaml max_count_per_cell",
            fix="lower 5A's volume or raise the cap",
            state=ctx.state,
        )


def run(ctx: StateContext) -> None:
    assert ctx.scenario is not None and ctx.shard is not None
    horizon: Horizon = ctx.policy("CFG/horizon.yaml")
    pol: Counts = ctx.policy("5B/counts.yaml")
    h = 24 * horizon.days
    params = ctx.read("group_params", scenario=ctx.scenario).sort("group_id")
    kappa = params["kappa"].to_numpy().astype(np.float64)
    field = ctx.read("latent_field", scenario=ctx.scenario).sort("group_id", "bucket_index")
    factor = field["factor"].to_numpy().astype(np.float64).reshape(params.height, h)
    profile = ctx.sealed_table("merchant_zone_profile")
    cells = cell_table(
        ctx.read("grouping"), profile, ctx.shard_of(profile["merchant_id"].to_numpy()) == ctx.shard
    )
    day_weights = day_weights_of(ctx, pol.use_day_effects, ctx.shard)
    key = ctx.family_key("count")
    law = LAW_NB2 if pol.law == "nb2" else LAW_POISSON
    parts = ctx.sealed_parts("merchant_zone_scenario", scenario=ctx.scenario, shard=ctx.shard)
    meter = ctx.progress_meter(part_rows(parts), "cells")
    disp_sum, disp_cells = 0.0, 0
    read = ["merchant_id", "channel_group", "zone_code", "zone_rank", "bucket_index", "lambda_scenario"]
    with ctx.stream("bucket_counts") as counts_out, ctx.stream("cell_totals") as totals_out:
        for raw in unit_batches(parts, read, ["merchant_id"], BATCH_ROWS):
            batch = raw.select(pl.exclude("channel_group"), CHANNEL_CODE).join(
                cells, on=CELL_KEY, how="left", maintain_order="left"
            )
            if batch["group_id"].null_count():
                raise EngineError(
                    "E_5B_GROUP_INCOMPLETE",
                    f"{batch['group_id'].null_count()} scenario rows outside this shard's grouping",
                    where="merchant_zone_scenario",
                    state=ctx.state,
                )
            lam = realised_lambda(batch, factor, day_weights)
            channel = batch["channel_code"].to_numpy()
            count, blocks, draws = bucket_counts(
                key,
                batch["merchant_id"].to_numpy(),
                batch["zone_code"].to_numpy(),
                batch["bucket_index"].to_numpy(),
                channel,
                lam,
                kappa[batch["group_id"].to_numpy()],
                law=law,
                lambda_eps=pol.lambda_eps,
            )
            check_sampler_bound(count == POISSON_BOUND, "5B.count", state=ctx.state)
            check_cap(ctx, batch, count, pol.max_count_per_cell)
            drew = draws > 0
            c2 = (batch["bucket_index"].to_numpy().astype(np.uint64) << np.uint64(8)) | channel
            ctx.record_draws(
                "count",
                (batch["merchant_id"].to_numpy()[drew], batch["zone_code"].to_numpy()[drew], c2[drew], 0),
                draws=draws[drew],
                blocks=blocks[drew],
                value=count[drew],
            )
            dense = lam >= DISPERSION_MIN_LAMBDA
            disp_sum += float((((count - lam) ** 2) / np.where(dense, lam, 1.0))[dense].sum())
            disp_cells += int(dense.sum())
            batch = batch.with_columns(
                pl.Series("lam", lam), pl.Series("count", count), pl.Series("blocks", blocks)
            )
            counts_out.write(
                batch.filter(pl.col("count") > 0)
                .with_columns(
                    pl.col("lam").cast(pl.Float32).alias("lambda_realised"), pl.col("count").cast(pl.UInt32)
                )
                .sort("merchant_id", "bucket_index", "zone_rank", "channel_group")
                .select(COUNT_COLUMNS)
            )
            totals_out.write(cell_totals(batch))
            meter.advance(batch.height)
    meter.close()
    ctx.facts["dispersion"] = {"sum": disp_sum, "cells": disp_cells}
