"""1B.S7 — join tile assignment and jitter; add each site's place and the city distance validation reads.

The place (`city_name`, `admin1_code`) is the nearest `ref_cities` row of the site's own legal country, of any
population: a site near a border is named after a town of its own country even when a foreign one is nearer,
and the capitals GeoNames lists with population 0 (BM, GD, KN have no other place) still name their sites. It
is independent of `city_min_population`, which only tunes the distance diagnostic. A legal country with no
GeoNames place at all gets nulls (none of the eligible countries lacks one in the shipped reference).
"""

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


def nearest(points: np.ndarray, cities: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Chord length and row of the nearest city to each unit vector: a k-d tree on the unit sphere.

    The chord is monotone in the great-circle distance, so the nearest by chord is the nearest on the sphere.
    """
    tree = cKDTree(unit_vectors(cities["lon"].to_numpy(), cities["lat"].to_numpy()))
    chord, row = tree.query(points, k=1)
    return chord, row


def nearest_city_km(lon: np.ndarray, lat: np.ndarray, cities: pl.DataFrame) -> np.ndarray:
    """Great-circle km to the nearest city of any country, from the chord length."""
    chord, _ = nearest(unit_vectors(lon, lat), cities)
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))


def nearest_place(sites: pl.DataFrame, cities: pl.DataFrame) -> pl.DataFrame:
    """`city_name` and `admin1_code` of each site's nearest city of its own country (iso2), in site order.

    One k-d tree per country that has sites; nulls where the country has no city.
    """
    points = unit_vectors(sites["lon"].to_numpy(), sites["lat"].to_numpy())
    found = np.full(sites.height, -1, dtype=np.int64)
    site_rows = sites.select("iso2").with_row_index("site").group_by("iso2").agg("site")
    city_rows = cities.select("iso2").with_row_index("city").group_by("iso2").agg("city")
    for site_list, city_list in site_rows.join(city_rows, on="iso2").select("site", "city").iter_rows():
        site, city = np.asarray(site_list, dtype=np.int64), np.asarray(city_list, dtype=np.int64)
        found[site] = city[nearest(points[site], cities[city])[1]]
    row = pl.Series("row", found).replace(-1, None)
    return cities.select(pl.col("name").alias("city_name"), "admin1_code").select(pl.all().gather(row))


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
    places = ctx.sealed_table("ref_cities")
    cities = places.filter(pl.col("population") >= policy.city_min_population)
    dist = nearest_city_km(out["lon_deg"].to_numpy(), out["lat_deg"].to_numpy(), cities)
    named = nearest_place(
        out.select(
            pl.col("legal_country_iso").alias("iso2"),
            pl.col("lon_deg").alias("lon"),
            pl.col("lat_deg").alias("lat"),
        ),
        places,
    )
    out = pl.concat([out.with_columns(pl.Series("dist_city_km", dist)), named], how="horizontal").select(
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
        "city_name",
        "admin1_code",
    )
    ctx.publish("s7_site_synthesis", out.sort("site_id"))
