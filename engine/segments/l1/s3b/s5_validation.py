"""3B.S5 — re-validate 3B: contracts, coverage, edge geometry and weights, the alias blob audited again from
its bytes, the edge universe hash, RNG replay and accounting, and the realism bands 3B.R01–R10."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from engine.core.group_sums import exact_sum, group_sums
from engine.core.policy_model import Validation
from engine.core.rng import SampleRule
from engine.core.state import StateContext
from engine.core.validation import (
    CheckBook,
    apply_checks,
    check_schemas,
    finish_segment,
    read_tables,
    run_replays,
    same_keys,
    state_reports,
)
from engine.kernels.alias import integer_masses
from engine.segments.l1.s1b.geo import CountryShapes
from engine.segments.l1.s3b import replay
from engine.segments.l1.s3b.files import edge_universe, read_file, read_json
from engine.segments.l1.s3b.places import country_anchors, great_circle_km
from engine.segments.l1.s3b.s2_edges import outside_count
from engine.segments.l1.s3b.s3_edge_alias import audit

SEEDED = ["virtual_classification", "virtual_settlement", "edge_catalogue", "s3_edge_alias_members"]
PRODUCERS = ["3B.S1", "3B.S2", "3B.S3", "3B.S4"]
# tz resolutions that are not a polygon hit (as 2A.S5 counts them)
TZ_FALLBACK = ("OVERRIDE_SITE", "OVERRIDE_MCC", "OVERRIDE_COUNTRY", "NEAREST_WITHIN", "NEAREST_BEYOND")


def structure(ctx: StateContext, book: CheckBook, t: dict[str, pl.DataFrame], shapes: CountryShapes) -> float:
    """Coverage, keys, weights, geometry, the alias audit and the universe hash; returns R08's value (the
    lower of the exact-slice share and the inside-country share)."""
    cls, settle, edges, members = (t[k] for k in SEEDED)
    merchants = ctx.sealed_table("merchant_catalogue")
    book.structural(
        "coverage.virtual_classification", same_keys(cls, merchants, "merchant_id"), code="E_3B_COVERAGE"
    )
    virtual = cls.filter(pl.col("virtual_mode") != "PHYSICAL").select("merchant_id")
    book.structural(
        "coverage.virtual_settlement",
        same_keys(settle, virtual, "merchant_id"),
        code="E_3B_SETTLEMENT_COVERAGE",
    )
    per = edges.group_by("merchant_id").agg(pl.len().alias("n"), pl.col("edge_seq").max().alias("top"))
    book.structural(
        "coverage.edge_catalogue",
        same_keys(per, virtual, "merchant_id") and bool((per["top"].cast(pl.Int64) == per["n"] - 1).all()),
        "every virtual or hybrid merchant has edges numbered 0..E−1, no physical merchant has any",
        code="E_3B_EDGE_COVERAGE",
    )
    sums = group_sums(edges, ["merchant_id"], ["edge_weight"])["edge_weight"]
    book.structural(
        "edge_weights_sum_to_one", bool(((sums - 1.0).abs() <= 1e-12).all()), code="E_3B_EDGE_WEIGHT"
    )
    tiles = ctx.sealed_table("tile_index").select(
        "country_iso", "tile_id", "lon_min", "lat_min", "lon_max", "lat_max"
    )
    cells = edges.join(tiles, on=["country_iso", "tile_id"], how="left")
    in_cell = cells.filter(
        (pl.col("lon_deg") >= pl.col("lon_min"))
        & (pl.col("lon_deg") <= pl.col("lon_max"))
        & (pl.col("lat_deg") >= pl.col("lat_min"))
        & (pl.col("lat_deg") <= pl.col("lat_max"))
    )
    book.structural("edge_in_tile", in_cell.height == edges.height, code="E_3B_EDGE_OUTSIDE")
    inside = edges.height - outside_count(
        shapes, edges["country_iso"].to_numpy(), edges["lon_deg"].to_numpy(), edges["lat_deg"].to_numpy()
    )
    book.structural(
        "edge_inside_country", inside == edges.height, f"{edges.height - inside} outside", "E_3B_EDGE_OUTSIDE"
    )

    blob, index = read_file(ctx, "edge_alias.bin"), read_json(ctx, "edge_alias_index.json")
    layout = ctx.policy("3B/alias_layout.yaml").layout()
    ordered = members.sort("merchant_id", "member_index")
    groups = ordered.group_by("merchant_id", maintain_order=True).agg("edge_id", "mass")
    keys_ok = [int(s["merchant_id"]) for s in index["slices"]] == sorted(virtual["merchant_id"].to_list())
    book.structural(
        "alias.slice_per_merchant",
        keys_ok and groups.height == len(index["slices"]),
        code="E_3B_ALIAS_HEADER",
    )
    book.guarded(
        "alias.audit",
        lambda: audit(blob, index, layout, [np.asarray(m, np.int64) for m in groups["mass"]], ctx.state),
    )
    by_edge = (
        edges.sort("merchant_id", "edge_id")
        .group_by("merchant_id", maintain_order=True)
        .agg("edge_id", "edge_weight")
    )
    exact = sum(
        list(e1) == list(e2)
        and np.array_equal(integer_masses(np.asarray(w, np.float64), layout.mass_bits), np.asarray(m))
        for e1, e2, w, m in zip(
            groups["edge_id"], by_edge["edge_id"], by_edge["edge_weight"], groups["mass"], strict=False
        )
    )
    n_slices = max(len(index["slices"]), 1)
    book.structural(
        "alias.members_are_edges_encoded",
        exact == len(index["slices"]) == by_edge.height,
        f"{exact} of {len(index['slices'])} slices hold their edges in edge_id order with the encoded masses",
        "E_ALIAS_DECODE",
    )
    universe = read_json(ctx, "edge_universe.json")
    digests, again = edge_universe(ctx, blob, read_file(ctx, "edge_alias_index.json"))
    routing = read_json(ctx, "virtual_routing_policy.json")
    book.structural(
        "edge_universe_hash",
        universe["universe_hash"] == again == routing["edge_universe_hash"] and universe["sha256"] == digests,
        code="E_3B_UNIVERSE_HASH",
    )
    return min(exact / n_slices, inside / max(edges.height, 1))


def metrics_of(t: dict[str, pl.DataFrame], r08: float) -> dict[str, tuple[float, int]]:
    cls, settle, edges = t["virtual_classification"], t["virtual_settlement"], t["edge_catalogue"]
    n = cls.height
    mode = cls["virtual_mode"]
    anchor = settle.select(
        "merchant_id",
        pl.col("country_iso").alias("s_iso"),
        pl.col("lat_deg").alias("s_lat"),
        pl.col("lon_deg").alias("s_lon"),
    )
    per = edges.join(anchor, on="merchant_id")
    km = great_circle_km(
        per["lat_deg"].to_numpy(), per["lon_deg"].to_numpy(), per["s_lat"].to_numpy(), per["s_lon"].to_numpy()
    )
    weighted = per.select(
        "merchant_id",
        pl.when(pl.col("country_iso") == pl.col("s_iso"))
        .then(pl.col("edge_weight"))
        .otherwise(0.0)
        .alias("settle_share"),
        (pl.col("edge_weight") * pl.Series("km", km)).alias("wkm"),
    )
    agg = (
        per.group_by("merchant_id")
        .agg(
            pl.len().alias("edges"),
            pl.col("country_iso").n_unique().alias("countries"),
            pl.col("edge_weight").max().alias("top1"),
        )
        .join(group_sums(weighted, ["merchant_id"], ["settle_share", "wkm"]), on="merchant_id")
        .sort("merchant_id")  # cv's float moments add in row order
    )
    v = agg.height

    def cv(col: str) -> float:
        x = agg[col].cast(pl.Float64).to_numpy()
        return float(x.std() / x.mean()) if v else float("nan")

    big = (
        settle.group_by("country_iso")
        .agg(
            pl.len().alias("V"),
            pl.col("city_id").drop_nulls().n_unique().alias("cities"),
            (pl.col("city_id").value_counts(sort=True).first().struct.field("count") / pl.len()).alias("top"),
        )
        .filter(pl.col("V") >= 20)
    )
    ratio = big.with_columns(
        (pl.col("cities") / pl.min_horizontal(pl.lit(50.0), 0.3 * pl.col("V"))).alias("r")
    )
    hybrid = cls.filter(mode == "HYBRID")["virtual_share"]
    tz_fb = edges["resolution_method"].is_in(list(TZ_FALLBACK))
    return {
        "virtual_only_share": (float((mode == "VIRTUAL_ONLY").mean()) if n else 0.0, n),
        "hybrid_share": (float((mode == "HYBRID").mean()) if n else 0.0, n),
        "rule_stamped_share": (
            float((cls["rule_id"].is_not_null() & cls["rule_version"].is_not_null()).mean()) if n else 1.0,
            n,
        ),
        "distinct_rules_fired": (float(cls["rule_id"].n_unique()), n),
        "cv_edges_per_merchant": (cv("edges"), v),
        "cv_countries_per_merchant": (cv("countries"), v),
        "median_top1_edge_share": (float(agg["top1"].median()) if v else float("nan"), v),
        "median_settlement_country_share": (float(agg["settle_share"].median()) if v else float("nan"), v),
        "median_weighted_settlement_km": (float(agg["wkm"].median()) if v else float("nan"), v),
        "min_settlement_city_ratio": (float(ratio["r"].min()) if big.height else float("nan"), big.height),
        "max_settlement_top_city_share": (
            float(big["top"].max()) if big.height else float("nan"),
            big.height,
        ),
        "exact_slice_and_inside_share": (r08, v),
        "edge_fallback_share": (
            float((edges["placement"] == "FALLBACK").mean()) if edges.height else 0.0,
            edges.height,
        ),
        "edge_tz_fallback_share": (float(tz_fb.mean()) if edges.height else 0.0, edges.height),
        "mean_hybrid_virtual_share": (float(hybrid.mean()) if hybrid.len() else float("nan"), hybrid.len()),
    }


def geography(ctx: StateContext, t: dict[str, pl.DataFrame]) -> dict[str, Any]:
    """Evidence for the realism report: where edges and settlements are, by region and top countries."""
    regions = ctx.sealed_table("ref_countries").select(pl.col("iso2").alias("country_iso"), "region")
    edges, settle = t["edge_catalogue"], t["virtual_settlement"]

    def shares(df: pl.DataFrame, col: str, weight: str | None = None, top: int = 0) -> dict[str, float]:
        w = pl.col(weight) if weight else pl.lit(1.0)
        g = group_sums(df.select(col, w.alias("w")), [col], ["w"])
        g = g.with_columns(pl.col("w") / exact_sum(g["w"]))
        g = g.sort(["w", col], descending=[True, False])
        return {str(k): round(float(x), 6) for k, x in (g.head(top) if top else g).iter_rows()}

    e = edges.join(regions, on="country_iso", how="left")
    n_virtual = max(settle.height, 1)
    return {
        "edges": edges.height,
        "edge_share_by_region": shares(e, "region"),
        "edge_weight_share_by_region": shares(e, "region", "edge_weight"),
        "edge_share_top_countries": shares(edges, "country_iso", top=15),
        "edge_countries": edges["country_iso"].n_unique(),
        "settlement_share_top_countries": shares(settle, "country_iso", top=10),
        "offshore_share": float(settle["offshore"].sum()) / n_virtual,
    }


def replays(ctx: StateContext, t: dict[str, pl.DataFrame], shapes: CountryShapes) -> list[replay.Replay]:
    """Every RNG family of 3B, as the replay law takes them."""
    cls, settle, edges = t["virtual_classification"], t["virtual_settlement"], t["edge_catalogue"]
    merchants = ctx.sealed_table("merchant_catalogue")
    sampler = ctx.sealed_table("tile_sampler")
    edges_policy = ctx.policy("3B/edges.yaml")
    with_tiles = sorted(set(sampler["country_iso"].to_list()) & set(shapes.parts))
    universe = replay.cdn_universe(
        sampler,
        ctx.sealed_table("ref_country_macro"),
        ctx.sealed_table("ref_countries"),
        country_anchors(shapes, with_tiles),
        edges_policy,
    )
    return [
        replay.hybrid_share(cls, ctx.policy("3B/virtual_rules.yaml")),
        replay.settlement(
            settle,
            cls,
            merchants.select("merchant_id", "home_country_iso"),
            ctx.sealed_table("ref_cities"),
            ctx.policy("3B/settlement.yaml"),
        ),
        replay.edge_count(
            settle, cls, merchants.select("merchant_id", "n_outlets_total"), edges, edges_policy
        ),
        replay.edge_place(edges, settle, universe, sampler, edges_policy),
        replay.edge_jitter(edges, ctx.sealed_table("tile_index"), shapes, edges_policy.jitter_max_attempts),
    ]


def run(ctx: StateContext) -> None:
    val: Validation = ctx.policy("3B/validation.yaml")
    t = read_tables(ctx, SEEDED, [])
    book = CheckBook()
    check_schemas(ctx, book, t)
    shapes = CountryShapes(ctx.sealed_table("ref_country_polygons"))
    r08 = structure(ctx, book, t, shapes)
    ctx.progress("replays")
    reports, recorded = state_reports(ctx, PRODUCERS)
    rule = SampleRule.of(val.replay_sample)
    expected = run_replays(ctx, book, replays(ctx, t, shapes), recorded, rule=rule, code="E_3B_REPLAY")
    apply_checks(book, val, metrics_of(t, r08))
    finish_segment(
        ctx,
        book,
        {
            "rng_accounting": {"recorded": recorded, "expected": expected},
            "state_reports": reports,
            "extra": {"edge_geography": geography(ctx, t)},
        },
    )
