"""1A.S8 — egress: one row per site (single-site merchants included) and one row per merchant.

A site is priced in the settlement currency of its legal country (`ref_currencies.settlement_currency`); the
merchant row keeps its home currency, the one 1A.S5–S7 weighed countries by.
"""

from __future__ import annotations

import polars as pl

from engine.core.errors import EngineError
from engine.core.ids import assign_ids
from engine.core.state import StateContext
from engine.segments.l1.s1a.common import home_currency


def outlet_rows(counts: pl.DataFrame, ranks: pl.DataFrame, merchants: pl.DataFrame) -> pl.DataFrame:
    """Explode n_sites into site_order 1..n per (merchant, country), in PK order before hashing ids."""
    return (
        counts.join(ranks, on=["merchant_id", "country_iso"], how="left")
        .join(merchants, on="merchant_id", how="left")
        .with_columns(pl.int_ranges(1, pl.col("n_sites").cast(pl.Int64) + 1).alias("site_order"))
        .explode("site_order")
        .sort(["merchant_id", "country_iso", "site_order"])
    )


def run(ctx: StateContext) -> None:
    universe = ctx.sealed_table("merchant_universe")
    hurdle = ctx.read("s1_hurdle").select("merchant_id", "is_multi")
    n_total = ctx.read("s2_outlet_count").select("merchant_id", pl.col("n_outlets").alias("n_outlets_total"))
    counts = ctx.read("s7_country_counts").select("merchant_id", "country_iso", "n_sites")
    foreign_ranks = ctx.read("s3_candidates").select("merchant_id", "country_iso", "candidate_rank")
    merchants = (
        universe.select("merchant_id", "home_country_iso")
        .join(hurdle, on="merchant_id")
        .join(n_total, on="merchant_id")
    )
    settlement = ctx.sealed_table("ref_currencies").select(
        pl.col("iso2").alias("country_iso"), pl.col("settlement_currency").alias("currency")
    )
    rows = outlet_rows(counts, foreign_ranks, merchants).join(
        settlement, on="country_iso", how="left", maintain_order="left"
    )
    if rows["currency"].null_count():
        unpriced = sorted(set(rows.filter(pl.col("currency").is_null())["country_iso"].to_list()))
        raise EngineError(
            "E_1A_CURRENCY_MISSING",
            f"legal countries without a settlement currency: {', '.join(unpriced)}",
            where="ref_currencies",
            state=ctx.state,
        )
    site_ids, probes = assign_ids(
        "site",
        (
            (int(m), c, int(o))
            for m, c, o in rows.select("merchant_id", "country_iso", "site_order").iter_rows()
        ),
    )
    ctx.count("site_id_probes", probes)
    outlets = rows.select(
        pl.Series("site_id", site_ids, dtype=pl.UInt64),
        "merchant_id",
        "home_country_iso",
        pl.col("country_iso").alias("legal_country_iso"),
        pl.col("site_order").cast(pl.UInt32),
        pl.col("candidate_rank").fill_null(0).cast(pl.UInt16),
        "is_multi",
        pl.col("n_outlets_total").cast(pl.UInt32),
        pl.col("n_sites").cast(pl.UInt32).alias("n_outlets_country"),
        "currency",
    ).sort("site_id")
    missing = universe.join(outlets, on="merchant_id", how="anti")
    if missing.height:
        raise EngineError(
            "E_1A_MERCHANT_WITHOUT_SITE",
            f"{missing.height} merchants have no site",
            where="outlet_catalogue",
            state=ctx.state,
        )
    n_countries = counts.group_by("merchant_id").len("n_countries")
    catalogue = (
        universe.select("merchant_id", "mcc", "sector", "channel", "home_country_iso")
        .join(
            home_currency(universe, ctx.sealed_table("ref_currencies")).select("merchant_id", "currency"),
            on="merchant_id",
        )
        .join(hurdle, on="merchant_id")
        .join(n_total, on="merchant_id")
        .join(n_countries, on="merchant_id")
        .select(
            "merchant_id",
            "mcc",
            "sector",
            "channel",
            "home_country_iso",
            "currency",
            "is_multi",
            pl.col("n_outlets_total").cast(pl.UInt32),
            pl.col("n_countries").cast(pl.UInt16),
        )
        .sort("merchant_id")
    )
    ctx.publish("outlet_catalogue", outlets)
    ctx.publish("merchant_catalogue", catalogue)
