"""1B.S9 — re-validate 1B: contracts, coverage, points inside countries, RNG replays, spatial realism."""

from __future__ import annotations

import numpy as np
import polars as pl
import shapely
from scipy import stats

from engine.core.group_sums import exact_sum, group_sums
from engine.core.policy_model import Validation
from engine.core.rng import SampleRule
from engine.core.state import StateContext
from engine.core.validation import (
    CheckBook,
    Replay,
    apply_checks,
    check_schemas,
    finish_segment,
    read_tables,
    run_replays,
    same_keys,
    state_reports,
)
from engine.segments.l1.s1b import replay
from engine.segments.l1.s1b.geo import CountryShapes
from engine.segments.l1.s1b.policy import Placement, TileWeights

SEEDED = ["s3_requirements", "s5_site_tile", "s6_site_jitter", "s7_site_synthesis", "site_locations"]
SEED_FREE = ["tile_index", "tile_weights", "tile_sampler"]
PRODUCERS = ["1B.S1", "1B.S2", "1B.S3", "1B.S4", "1B.S5", "1B.S6", "1B.S7", "1B.S8"]
KM_PER_DEG = 111.32


def tile_chi2_p(sites: pl.DataFrame, weights: pl.DataFrame, bins: int = 10) -> float:
    """χ² of tile draws over bins of cumulative weight (tiles in tile_id order); expected = bin mass."""
    w = weights.sort("tile_id")
    cum = np.cumsum(w["weight"].to_numpy()) - w["weight"].to_numpy()
    tile_bin = dict(
        zip(w["tile_id"].to_list(), np.minimum((cum * bins).astype(int), bins - 1).tolist(), strict=True)
    )
    mass = np.bincount(list(tile_bin.values()), weights=w["weight"].to_numpy(), minlength=bins)
    observed = np.bincount([tile_bin[t] for t in sites["tile_id"].to_list()], minlength=bins)
    n = sites.height
    keep = mass > 0
    expected = n * mass[keep]
    chi2 = float(((observed[keep] - expected) ** 2 / expected).sum())
    return float(stats.chi2.sf(chi2, max(1, int(keep.sum()) - 1)))


def stripe_z(sites: pl.DataFrame, weights: pl.DataFrame, index: pl.DataFrame) -> float:
    """max over raster rows of (obs − n·p)/√(n·p(1−p)+1)."""
    rows = group_sums(weights.join(index.select("tile_id", "row"), on="tile_id"), ["row"], ["weight"])
    obs = sites.group_by("raster_row").len("obs").rename({"raster_row": "row"})
    table = rows.join(obs, on="row", how="left").with_columns(pl.col("obs").fill_null(0))
    n = sites.height
    p = table["weight"].to_numpy()
    z = (table["obs"].to_numpy() - n * p) / np.sqrt(n * p * (1 - p) + 1.0)
    return float(z.max())


def distinct_ratio(sites: pl.DataFrame, weights: pl.DataFrame) -> tuple[float, float]:
    """(distinct tiles used, expected distinct tiles under weighted sampling with n draws)."""
    n = sites.height
    expected = float((1.0 - (1.0 - weights["weight"].to_numpy()) ** n).sum())
    return float(sites["tile_id"].n_unique()), expected


SPARSE_ALPHA = 1e-6  # 1B.R11 judges a Poisson lower confidence bound: a chance failure is below this


def sparse_cell_site_ratio(
    sites: pl.DataFrame, weights: pl.DataFrame, index: pl.DataFrame, density_min: float
) -> tuple[float, float, int]:
    """1B.R11: (ratio, lower bound, sites) — the share of sites in tiles under `density_min` persons/km² over
    the share of people living in such tiles, each country's population share weighted by its sites (1A, not
    population, picks the countries).

    The observed count is Poisson around ratio × expected, so the check judges the exact one-sided lower
    confidence bound of the ratio, λ_L / expected with P(X ≥ observed | λ_L) = SPARSE_ALPHA: it fails only
    when sites are shown to pile into sparse tiles, however few sites the world has. Countries with no
    people in any tile are left out (1B.R10 reports them). Where no one lives in such tiles, ratio and
    bound are 0 if no site is in one either, else inf.
    """
    keys = ["country_iso", "tile_id"]
    tiles = (
        index.select(*keys, "area_km2")
        .join(weights.select(*keys, "pop"), on=keys, how="left")
        .with_columns(pl.col("pop").fill_null(0.0))
        .with_columns((pl.col("pop") < density_min * pl.col("area_km2")).alias("sparse"))
    )
    thin = pl.when(pl.col("sparse")).then(pl.col("pop")).otherwise(0.0).alias("thin")
    shares = (
        group_sums(tiles.with_columns(thin), ["country_iso"], ["pop", "thin"])
        .filter(pl.col("pop") > 0)
        .select("country_iso", (pl.col("thin") / pl.col("pop")).alias("share"))
    )
    placed = (
        sites.select(pl.col("legal_country_iso").alias("country_iso"), "tile_id")
        .join(shares, on="country_iso")
        .join(tiles.select(*keys, "sparse"), on=keys)
    )
    observed, expected = int(placed["sparse"].sum()), exact_sum(placed["share"])
    if expected <= 0:
        value = 0.0 if observed == 0 else float("inf")
        return value, value, placed.height
    bound = 0.5 * float(stats.chi2.ppf(SPARSE_ALPHA, 2 * observed)) if observed else 0.0
    return observed / expected, bound / expected, placed.height


def realism(
    ctx: StateContext, t: dict[str, pl.DataFrame], shapes: CountryShapes, book: CheckBook, val: Validation
) -> None:
    syn = t["s7_site_synthesis"]
    inside = np.zeros(syn.height, dtype=bool)
    for (iso2,), grp in syn.with_row_index("_i").group_by(["legal_country_iso"]):
        ok = shapely.contains_xy(shapes.union(iso2), grp["lon_deg"].to_numpy(), grp["lat_deg"].to_numpy())
        inside[grp["_i"].to_numpy()] = ok
    n = syn.height
    min_p, max_z, used, expected = 1.0, -np.inf, 0.0, 0.0
    chi_support = stripe_support = used_support = 0
    weights, index = t["tile_weights"], t["tile_index"]
    for (iso2,), grp in syn.group_by(["legal_country_iso"]):
        w = weights.filter(pl.col("country_iso") == iso2)
        if grp.height >= 200:
            min_p, chi_support = min(min_p, tile_chi2_p(grp, w)), chi_support + grp.height
        if grp.height >= 50:
            idx = index.filter(pl.col("country_iso") == iso2)
            max_z, stripe_support = max(max_z, stripe_z(grp, w, idx)), stripe_support + grp.height
        if grp.height >= 100:
            u, e = distinct_ratio(grp, w)
            used, expected, used_support = used + u, expected + e, used_support + grp.height
    tiles = ctx.policy("1B/tiles.yaml")
    tile_weights: TileWeights = ctx.policy("1B/tile_weights.yaml")
    sparse_ratio, sparse_lcb, sparse_sites = sparse_cell_site_ratio(
        syn, weights, index, tile_weights.populated_density_min
    )
    ctx.facts["sparse_cell_site_ratio"] = sparse_ratio
    res = float(index["lon_max"][0] - index["lon_min"][0]) if index.height else 0.0
    edge_km = res * KM_PER_DEG
    dist = syn["dist_city_km"].to_numpy()
    pop = syn.join(
        weights.select(pl.col("country_iso").alias("legal_country_iso"), "tile_id", "pop"),
        on=["legal_country_iso", "tile_id"],
        how="left",
    )
    legal = set(syn["legal_country_iso"].to_list())
    uniform = weights.filter((pl.col("basis") == "UNIFORM") & pl.col("country_iso").is_in(list(legal)))
    coords = syn.select(pl.col("lat_deg").round(5), pl.col("lon_deg").round(5)).unique().height
    metrics: dict[str, tuple[float, int]] = {
        "inside_country_share": (float(inside.mean()) if n else 1.0, n),
        "fallback_share": (float((syn["placement"] == "FALLBACK").mean()) if n else 0.0, n),
        "min_tile_chi2_p": (min_p, chi_support),
        "max_stripe_z": (max_z if stripe_support else float("nan"), stripe_support),
        "populated_cells_used_ratio": (used / expected if expected else float("nan"), used_support),
        "unique_coord_share": (coords / n if n else 1.0, n),
        "median_city_km_excess": (float(np.median(dist)) - max(20.0, 0.75 * edge_km) if n else 0.0, n),
        "p90_city_km_excess": (float(np.quantile(dist, 0.9)) - max(80.0, 3.0 * edge_km) if n else 0.0, n),
        "populated_tile_share": (float((pop["pop"] > 0).mean()) if n else 1.0, n),
        "uniform_basis_countries": (float(uniform["country_iso"].n_unique()), len(legal)),
        "sparse_cell_site_ratio_lcb": (sparse_lcb, sparse_sites),
    }
    ctx.facts["raster"] = tiles.raster
    apply_checks(book, val, metrics)


def replays(ctx: StateContext, t: dict[str, pl.DataFrame], shapes: CountryShapes) -> list[Replay]:
    """Every RNG family of 1B, as the replay law takes them."""
    iso_num = ctx.sealed_table("ref_countries").select(pl.col("iso2").alias("country_iso"), "iso_num")
    placement: Placement = ctx.policy("1B/placement.yaml")
    return [
        replay.site_tile(t["s5_site_tile"], t["tile_sampler"], iso_num),
        replay.jitter(
            t["s6_site_jitter"],
            t["s5_site_tile"],
            t["tile_index"],
            iso_num,
            shapes,
            placement.jitter_max_attempts,
        ),
    ]


def run(ctx: StateContext) -> None:
    val: Validation = ctx.policy("1B/validation.yaml")
    t = read_tables(ctx, SEEDED, SEED_FREE)
    book = CheckBook()
    check_schemas(ctx, book, t)
    outlets = ctx.sealed_table("outlet_catalogue")
    loc = t["site_locations"]
    book.structural(
        "coverage.site_locations",
        same_keys(loc, outlets, "site_id"),
        code="E_1B_COVERAGE",
    )
    fk = loc.join(
        t["tile_index"].select(
            pl.col("country_iso").alias("legal_country_iso"),
            "tile_id",
            "lon_min",
            "lat_min",
            "lon_max",
            "lat_max",
        ),
        on=["legal_country_iso", "tile_id"],
        how="left",
    )
    in_cell = fk.filter(
        (pl.col("lon_deg") >= pl.col("lon_min"))
        & (pl.col("lon_deg") <= pl.col("lon_max"))
        & (pl.col("lat_deg") >= pl.col("lat_min"))
        & (pl.col("lat_deg") <= pl.col("lat_max"))
    )
    book.structural("point_in_cell", in_cell.height == loc.height, code="E_1B_POINT_OUTSIDE")
    sums = group_sums(t["tile_weights"], ["country_iso"], ["weight"])
    book.structural(
        "weights_sum_to_one", bool(((sums["weight"] - 1.0).abs() <= 1e-12).all()), code="E_1B_WEIGHT_INVALID"
    )
    masses = t["tile_sampler"].group_by("country_iso").agg(pl.col("mass").sum())
    book.structural("alias_mass_total", bool((masses["mass"] == 2**32).all()), code="E_ALIAS_DECODE")
    ctx.progress("replays")
    reports, recorded = state_reports(ctx, PRODUCERS)
    rule = SampleRule.of(val.replay_sample)
    shapes = CountryShapes(ctx.sealed_table("ref_country_polygons"))  # unions built once, for both
    expected = run_replays(ctx, book, replays(ctx, t, shapes), recorded, rule=rule, code="E_1B_REPLAY")
    realism(ctx, t, shapes, book, val)
    finish_segment(
        ctx, book, {"rng_accounting": {"recorded": recorded, "expected": expected}, "state_reports": reports}
    )
