"""3A.S2 — each country's population share by time zone: every 1B tile centre resolved with 2A's resolver
(country-scope overrides only), its population summed per zone, smoothed and floored. Seed-free."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.errors import EngineError
from engine.core.group_sums import group_sums
from engine.core.horizon import Horizon
from engine.core.state import StateContext
from engine.segments.l1.s2a.policy import TzOverrides, TzResolution
from engine.segments.l1.s2a.resolver import TzIndex, active_overrides, resolve
from engine.segments.l1.s2a.s1_tz_lookup import overrides_of, same_clock_over, tz_country_map, zone1970_map
from engine.segments.l1.s3a.policy import ZonePriors

SUM_TOL = 1e-12


def floor_shares(share: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Raise every share below `floor` to it and rescale the others to fill the rest, repeating while the
    rescaling pushes another below the floor; where floors would take everything, the split is even."""
    fixed = np.zeros(share.size, dtype=bool)
    out = share.astype(np.float64)
    while True:
        low = ~fixed & (out < floor)
        if not low.any():
            return out, fixed
        fixed |= low
        rest = 1.0 - floor * fixed.sum()
        if rest <= 0.0 or fixed.all():
            return np.full(share.size, 1.0 / share.size), np.ones(share.size, dtype=bool)
        free = ~fixed
        out = np.where(fixed, floor, out * rest / out[free].sum())


def country_priors(
    mass: np.ndarray, smoothing_share: float, zone_floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """One country's prior shares from its population per zone: `smoothing_share` of the country total added
    to every zone (an unpopulated country splits evenly), normalised, then floored."""
    total = float(mass.sum())
    smoothed = mass + smoothing_share * total if total > 0.0 else np.ones(mass.size)
    return floor_shares(smoothed / smoothed.sum(), zone_floor)


def resolve_tiles(
    ctx: StateContext, tiles: pl.DataFrame, tz_country: pl.DataFrame, index: TzIndex
) -> pl.DataFrame:
    """Each tile centre's zone, by 2A's resolver with 2A's sealed settings and its country-scope overrides."""
    policy: TzResolution = ctx.policy("2A/tz_resolution.yaml")
    horizon: Horizon = ctx.policy("CFG/horizon.yaml")
    overrides: TzOverrides = ctx.policy("2A/tz_overrides.yaml")
    tzmap = tz_country_map(tz_country)
    countries = [o for o in overrides_of(overrides) if o.scope == "country"]
    res = resolve(
        index,
        tiles["lon_c"].to_numpy(),
        tiles["lat_c"].to_numpy(),
        tiles["country_iso"].to_numpy(),
        None,
        None,
        tzmap,
        active_overrides(countries, horizon.start().date(), tz_country=tzmap),
        policy.epsilon_deg,
        zone1970=zone1970_map(tz_country),
        zone1970_tzid=policy.zone1970_tzid,
        overlap_preference=policy.overlap_preference,
        same_clock=same_clock_over(*horizon.window()),
    )
    for method, n in zip(*np.unique(np.asarray(res["resolution_method"]), return_counts=True), strict=True):
        if method not in ("POLYGON", "NUDGE"):
            ctx.count(f"tiles_{method.lower()}", int(n))
    return tiles.with_columns(pl.Series("tz_index", res["tz_index"], dtype=pl.UInt16))


def run(ctx: StateContext) -> None:
    pol: ZonePriors = ctx.policy("3A/zone_priors.yaml")
    tz_country = ctx.sealed_table("ref_tz_country")
    tzids = sorted(set(tz_country["tzid"].to_list()))
    index = TzIndex.from_table(tzids, ctx.sealed_table("ref_tz_polygons"))
    tiles = (
        ctx.sealed_table("tile_index")
        .select("country_iso", "tile_id", "lon_c", "lat_c")
        .join(
            ctx.sealed_table("tile_weights").select("country_iso", "tile_id", "pop"),
            on=["country_iso", "tile_id"],
            how="left",
        )
        .with_columns(pl.col("pop").fill_null(0.0))
        .filter(pl.col("country_iso").is_in(tz_country["iso2"].unique().implode()))  # no zone, no legal site
        .sort("country_iso", "tile_id")
    )
    # an unpopulated tile adds no mass to any zone (and is mostly sea, where the nearest-polygon fallback
    # is slow): only populated centres are resolved
    populated = tiles.filter(pl.col("pop") > 0.0)
    ctx.progress(
        f"resolving {populated.height} populated tile centres (of {tiles.height}) in {len(tzids)} zones"
    )
    resolved = resolve_tiles(ctx, populated, tz_country, index)
    mass = group_sums(resolved, ["country_iso", "tz_index"], ["pop"]).rename({"pop": "pop_mass"})
    position = {tz: i for i, tz in enumerate(tzids)}
    listed = (
        tz_country.select(pl.col("iso2").alias("country_iso"), "tzid")
        .filter(pl.col("country_iso").is_in(tiles["country_iso"].unique().implode()))
        .with_columns(pl.col("tzid").replace_strict(position, return_dtype=pl.UInt16).alias("tz_index"))
        .select("country_iso", "tz_index")
    )
    rows = (
        pl.concat([listed, mass.select("country_iso", "tz_index")])
        .unique()
        .join(mass, on=["country_iso", "tz_index"], how="left")
        .with_columns(pl.col("pop_mass").fill_null(0.0))
        .sort("country_iso", "tz_index")
    )
    shares, floored = [], []
    for (iso2,), grp in rows.group_by(["country_iso"], maintain_order=True):
        share, fixed = country_priors(grp["pop_mass"].to_numpy(), pol.smoothing_share, pol.zone_floor)
        if abs(float(share.sum()) - 1.0) > SUM_TOL:
            raise EngineError(
                "E_3A_PRIOR_SUM",
                f"the zone priors of {iso2} sum to {float(share.sum())!r}",
                where="s2_zone_priors",
                fix="check zone_priors.yaml: zone_floor times the country's zone count must stay below 1",
                state=ctx.state,
            )
        shares.append(share)
        floored.append(fixed)
    out = rows.with_columns(
        pl.col("tz_index").replace_strict(dict(enumerate(tzids)), return_dtype=pl.String).alias("tzid"),
        pl.Series("prior_share", np.concatenate(shares)),
        pl.Series("floor_applied", np.concatenate(floored)),
    ).select("country_iso", "tz_index", "tzid", "pop_mass", "prior_share", "floor_applied")
    ctx.facts["countries"] = out["country_iso"].n_unique()
    ctx.publish("s2_zone_priors", out, seed_free=True)
