"""3A.S4 — integer outlet-equivalents per zone that conserve each pair's site count."""

from __future__ import annotations

import polars as pl

from engine.core.state import StateContext
from engine.segments.l1.s3a.pairs import PAIR, refuse_pairs


def largest_remainder(zones: pl.DataFrame) -> pl.DataFrame:
    """Escalated pairs: one outlet per zone, the other site_count − zones_supported by largest remainder
    of share·(site_count − zones_supported), ties by tz_index; residual_rank: its place in that order."""
    rest = (pl.col("site_count") - pl.col("zones_supported")).cast(pl.Float64)
    quota = pl.col("share") * rest
    zones = zones.with_columns(
        quota.floor().cast(pl.Int64).alias("whole"), (quota - quota.floor()).alias("rem")
    )
    zones = zones.sort([*PAIR, "rem", "tz_index"], descending=[False, False, True, False]).with_columns(
        pl.int_range(pl.len()).over(PAIR).alias("residual_rank")
    )
    left = (pl.col("site_count") - pl.col("zones_supported")).cast(pl.Int64) - pl.col("whole").sum().over(
        PAIR
    )
    extra = (pl.col("residual_rank") < left).cast(pl.Int64)
    return zones.with_columns((1 + pl.col("whole") + extra).cast(pl.UInt32).alias("zone_site_count"))


def run(ctx: StateContext) -> None:
    pairs = ctx.read("s1_pairs").select(*PAIR, "site_count", "zones_supported", "is_escalated")
    zones = ctx.read("s1_pair_zones").select(*PAIR, "tz_index", "sites_in_zone", "site_share")
    shares = ctx.read("s3_zone_shares").select(*PAIR, "tz_index", "share")
    plain = zones.join(pairs.filter(~pl.col("is_escalated")), on=PAIR, how="semi").select(
        *PAIR,
        "tz_index",
        pl.col("site_share").alias("share"),
        pl.col("sites_in_zone").alias("zone_site_count"),
        pl.lit(None, dtype=pl.UInt16).alias("residual_rank"),
    )
    escalated = largest_remainder(shares.join(pairs, on=PAIR, how="inner")).select(
        *PAIR, "tz_index", "share", "zone_site_count", pl.col("residual_rank").cast(pl.UInt16)
    )
    out = pl.concat([plain, escalated]).sort([*PAIR, "tz_index"])
    totals = (
        out.group_by(PAIR)
        .agg(pl.col("zone_site_count").sum().alias("n"), (pl.col("zone_site_count") >= 1).all().alias("ok"))
        .join(pairs, on=PAIR, how="full", coalesce=True)
    )
    bad = totals.filter(
        (pl.col("n") != pl.col("site_count")).fill_null(True) | ~pl.col("ok").fill_null(False)
    )
    refuse_pairs(
        bad,
        "E_3A_COUNT_CONSERVATION",
        "whose zone counts do not conserve their site count",
        "{n} outlet-equivalents for {site_count} sites",
        where="s4_zone_counts",
        fix="report this: largest remainder conserves counts by construction",
        state=ctx.state,
    )
    ctx.publish("s4_zone_counts", out)
