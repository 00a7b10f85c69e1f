"""1B.S3 — how many sites to place per (merchant, legal country)."""

from __future__ import annotations

import polars as pl

from engine.core.errors import EngineError
from engine.core.state import StateContext


def run(ctx: StateContext) -> None:
    outlets = ctx.sealed_table("outlet_catalogue")
    req = (
        outlets.group_by("merchant_id", "legal_country_iso")
        .agg(
            pl.len().alias("n_sites"),
            pl.col("site_order").min().alias("lo"),
            pl.col("site_order").max().alias("hi"),
        )
        .sort(["merchant_id", "legal_country_iso"])
    )
    if req.filter((pl.col("lo") != 1) | (pl.col("hi") != pl.col("n_sites"))).height:
        raise EngineError(
            "E_1B_SITE_ORDER",
            "site_order is not 1..n within a merchant and country",
            where="outlet_catalogue",
            state=ctx.state,
        )
    countries = ctx.read("tile_index", seed_free=True)["country_iso"].unique()
    missing = req.filter(~pl.col("legal_country_iso").is_in(countries.implode()))
    if missing.height:
        raise EngineError(
            "E_1B_COUNTRY_NO_TILES",
            f"legal country {missing['legal_country_iso'][0]} has no tile",
            where="tile_index",
            state=ctx.state,
        )
    out = req.select("merchant_id", "legal_country_iso", pl.col("n_sites").cast(pl.UInt32))
    if int(out["n_sites"].sum()) != outlets.height:
        raise EngineError(
            "E_1B_COVERAGE", "Σ n_sites differs from outlet rows", where="s3_requirements", state=ctx.state
        )
    ctx.publish("s3_requirements", out)
