"""The CDN country law of 3B.S2: a base weight per country and each merchant's locality-leaning mix."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.segments.l1.s3b.places import great_circle_km
from engine.segments.l1.s3b.policy import Edges


def cdn_countries(
    tiles: pl.DataFrame, macro: pl.DataFrame, countries: pl.DataFrame, policy: Edges
) -> pl.DataFrame:
    """Eligible countries with tiles and a population and GDP per head (iso2 order), with the normalised base
    weight c ∝ pop^a · gdp_pc^b · (hub_boost if a CDN hub)."""
    cw = policy.cdn_weights
    eligible = countries.filter(pl.col("eligible")).select(pl.col("iso2").alias("country_iso"))
    df = (
        tiles.select("country_iso")
        .unique()
        .join(eligible, on="country_iso")
        .join(macro.select(pl.col("iso2").alias("country_iso"), "population", "gdp_pc_usd"), on="country_iso")
        .filter((pl.col("population") > 0) & (pl.col("gdp_pc_usd") > 0))
        .sort("country_iso")
    )
    boost = np.where(df["country_iso"].is_in(cw.hubs).to_numpy(), cw.hub_boost, 1.0)
    c = df["population"].cast(pl.Float64).to_numpy() ** cw.pop_exponent
    c = c * df["gdp_pc_usd"].to_numpy() ** cw.gdp_pc_exponent * boost
    return df.select("country_iso").with_columns(pl.Series("c", c / c.sum()))


def merchant_mix(
    c: np.ndarray,
    anchor_lat: np.ndarray,
    anchor_lon: np.ndarray,
    settle_lat: np.ndarray,
    settle_lon: np.ndarray,
    settle_col: np.ndarray,
    policy: Edges,
) -> np.ndarray:
    """p[m, x] = (1 − κ)·c_x + κ·loc_x with loc ∝ c·exp(−d(settlement_m, anchor_x)/L), then the settlement
    country's share clamped into the policy range and the other countries rescaled to the rest."""
    d = great_circle_km(settle_lat[:, None], settle_lon[:, None], anchor_lat[None, :], anchor_lon[None, :])
    loc = c[None, :] * np.exp(-d / policy.locality_km)
    loc /= loc.sum(axis=1, keepdims=True)
    p = (1.0 - policy.kappa) * c[None, :] + policy.kappa * loc
    rows = np.arange(p.shape[0])
    ps = p[rows, settle_col]
    lo, hi = policy.settlement_share_range
    target = np.clip(ps, lo, hi)
    scale = np.where(ps < 1.0, (1.0 - target) / np.where(ps < 1.0, 1.0 - ps, 1.0), 0.0)
    p *= scale[:, None]
    p[rows, settle_col] = target
    return p
