"""1B.S7 — join tile assignment and jitter; add the diagnostics validation reads (nearest-city distance)."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.spatial import cKDTree

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.segments.l1.s1b.policy import Placement

EARTH_RADIUS_KM = 6371.0088


def unit_vectors(lon_deg: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def nearest_city_km(lon: np.ndarray, lat: np.ndarray, cities: pl.DataFrame) -> np.ndarray:
    """Great-circle km to the nearest city, from the chord length found by a k-d tree on the unit sphere."""
    tree = cKDTree(unit_vectors(cities["lon"].to_numpy(), cities["lat"].to_numpy()))
    chord, _ = tree.query(unit_vectors(lon, lat), k=1)
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))


def run(ctx: StateContext) -> None:
    policy: Placement = ctx.policy("1B/placement.yaml")
    tiles = ctx.read("s5_site_tile").select(
        "site_id", "merchant_id", "legal_country_iso", "site_order", "tile_id"
    )
    jitter = ctx.read("s6_site_jitter").select("site_id", "lon_deg", "lat_deg", "placement", "attempts")
    rows = ctx.read("tile_index", seed_free=True).select(
        pl.col("country_iso").alias("legal_country_iso"), "tile_id", pl.col("row").alias("raster_row")
    )
    out = tiles.join(jitter, on="site_id", how="inner").join(
        rows, on=["legal_country_iso", "tile_id"], how="left"
    )
    outlets = ctx.sealed_table("outlet_catalogue")
    if out.height != outlets.height or out["raster_row"].null_count():
        raise EngineError(
            "E_1B_COVERAGE", "sites differ from outlet_catalogue", where="s7_site_synthesis", state=ctx.state
        )
    cities = ctx.sealed_table("ref_cities").filter(pl.col("population") >= policy.city_min_population)
    dist = nearest_city_km(out["lon_deg"].to_numpy(), out["lat_deg"].to_numpy(), cities)
    out = out.with_columns(pl.Series("dist_city_km", dist)).select(
        "site_id",
        "merchant_id",
        "legal_country_iso",
        "site_order",
        "tile_id",
        "raster_row",
        "lat_deg",
        "lon_deg",
        "placement",
        "attempts",
        "dist_city_km",
    )
    ctx.publish("s7_site_synthesis", out.sort("site_id"))
