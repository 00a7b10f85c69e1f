"""5B.S1 — the hourly bucket grid of the horizon, and the grouping that decides which merchant-zone-channel
rows share a latent field: strata (demand_class, channel_group, virtual band, zone band), each split into
`in_stratum_buckets` by one `5B.group` draw per merchant, so a merchant's rows of one stratum share a group.
The grouping is scenario-free; the scenario's parameters are 5B.S2's."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.horizon import Horizon
from engine.core.rng import uniforms_for_ids
from engine.core.state import StateContext
from engine.kernels.arrivals import Clock, local_offsets
from engine.segments.l2.s5b.common import BAND, BUCKET_US, PROFILE_KEY, US, is_virtual, tz_of_zone
from engine.segments.l2.s5b.policy import Grouping
from engine.segments.l2.s5b.upstream import flat_clock, tz_table

STRATUM = ["demand_class", "channel_group", "virtual_band", "zone_band"]


def time_grid(horizon: Horizon) -> pl.DataFrame:
    """bucket b = [start + 3600·b, start + 3600·(b+1)); its UTC date and day index."""
    h = 24 * horizon.days
    b = np.arange(h, dtype=np.int64)
    start_us = int(horizon.start().timestamp()) * US
    ts = pl.Series("bucket_start_utc", start_us + b * BUCKET_US).cast(pl.Datetime("us", "UTC"))
    return pl.DataFrame(
        {
            "bucket_index": b.astype(np.uint32),
            "bucket_start_utc": ts,
            "utc_date": ts.dt.date(),
            "utc_day_index": (b // 24).astype(np.uint16),
        }
    )


def zone_bands(zone_code: np.ndarray, clock: Clock, start_us: int) -> np.ndarray:
    """⌊(UTC offset in minutes at the horizon start + 720) / 120⌋, 0..13."""
    tz = tz_of_zone(zone_code)
    off = local_offsets(clock, tz, np.full(tz.size, start_us, dtype=np.int64))
    if (off == -(1 << 31)).any():
        raise ValueError("a zone has no transition at the horizon start (S0 checks the cache)")
    return ((off // 60 + 720) // 120).astype(np.uint8)


def grouping(profile: pl.DataFrame, u: np.ndarray, bands: np.ndarray, buckets: int) -> pl.DataFrame:
    """Each profile row's stratum, in_stratum = ⌊buckets·u⌋ of its merchant's uniform (u aligned with
    profile rows), and group_id = dense rank of (stratum, in_stratum) from 0 in sorted order."""
    rows = profile.with_columns(
        pl.when(is_virtual())
        .then(pl.lit("VIRTUAL"))
        .otherwise(pl.lit("PHYSICAL"))
        .cast(BAND)
        .alias("virtual_band"),
        pl.Series("zone_band", bands, dtype=pl.UInt8),
        pl.Series("in_stratum", np.minimum(np.floor(u * buckets), buckets - 1).astype(np.uint8)),
    )
    keys = [*STRATUM, "in_stratum"]
    ids = rows.select(keys).unique().sort(keys).with_row_index("group_id")
    return rows.join(ids, on=keys, how="left").with_columns(pl.col("group_id").cast(pl.UInt32))


def run(ctx: StateContext) -> None:
    horizon: Horizon = ctx.policy("CFG/horizon.yaml")
    pol: Grouping = ctx.policy("5B/grouping.yaml")
    profile = ctx.sealed_table("merchant_zone_profile").sort(PROFILE_KEY)
    merchants = profile["merchant_id"].to_numpy().astype(np.uint64)
    k0, k1 = ctx.family_key("group")
    distinct = np.unique(merchants)
    u_m = uniforms_for_ids(k0, k1, distinct)
    ctx.record_draws("group", (distinct, 0, 0, 0), draws=1, blocks=1, value=u_m)
    u = u_m[np.searchsorted(distinct, merchants)]
    clock = Clock(*flat_clock(tz_table(ctx)))
    bands = zone_bands(profile["zone_code"].to_numpy(), clock, int(horizon.start().timestamp()) * US)
    rows = grouping(profile, u, bands, pol.in_stratum_buckets)
    if rows.height != profile.height or rows["group_id"].null_count():
        raise EngineError(
            "E_5B_GROUP_INCOMPLETE",
            f"{profile.height} profile rows, {rows.height} grouped",
            where="grouping",
            fix="this is an engine defect",
            state=ctx.state,
        )
    sizes = rows.group_by("group_id").len()["len"]
    median = float(sizes.median() or 0.0)
    if median < pol.min_median_group_rows:
        ctx.warnings.append(f"median group holds {median} rows (< {pol.min_median_group_rows})")
    ctx.facts.update({"groups": int(sizes.len()), "median_group_rows": median})
    ctx.publish("time_grid", time_grid(horizon))
    ctx.publish("grouping", rows.select(*PROFILE_KEY, "group_id", "zone_band", "in_stratum"))
