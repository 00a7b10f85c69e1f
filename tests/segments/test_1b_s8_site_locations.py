"""1B.S8 on the tiny world: the egress is sorted, complete, every point is inside its country and is named
after the nearest GeoNames place of that country."""

from pathlib import Path

import numpy as np
import polars as pl
import shapely

from engine.segments.l1.s1b.geo import CountryShapes
from engine.segments.l1.s1b.s7_synthesis import unit_vectors


def test_site_locations_sorted_complete_and_inside(tiny_world: Path) -> None:
    loc = pl.read_parquet(next(tiny_world.glob("data/layer1/1B/site_locations/seed=42/*/part-00000.parquet")))
    assert loc.select("merchant_id", "legal_country_iso", "site_order").equals(
        loc.select("merchant_id", "legal_country_iso", "site_order").sort(
            ["merchant_id", "legal_country_iso", "site_order"]
        )
    )
    shapes = CountryShapes(
        pl.read_parquet(next(tiny_world.glob("resources/ref_country_polygons/build=*/*.parquet")))
    )
    for (iso2,), grp in loc.group_by(["legal_country_iso"]):
        assert shapely.contains_xy(
            shapes.union(iso2), grp["lon_deg"].to_numpy(), grp["lat_deg"].to_numpy()
        ).all()
    assert ((loc["lon_deg"] >= -180) & (loc["lon_deg"] < 180) & (loc["lat_deg"].abs() <= 90)).all()


def test_site_places_are_the_nearest_place_of_the_own_country(tiny_world: Path) -> None:
    loc = pl.read_parquet(next(tiny_world.glob("data/layer1/1B/site_locations/seed=42/*/part-00000.parquet")))
    syn = pl.read_parquet(
        next(tiny_world.glob("data/layer1/1B/s7_site_synthesis/seed=42/*/part-00000.parquet"))
    )
    places = pl.read_parquet(next(tiny_world.glob("resources/ref_cities/build=*/*.parquet")))
    assert loc.columns[-2:] == ["city_name", "admin1_code"]
    carried = loc.join(syn, on="site_id", suffix="_s7")
    assert carried.height == loc.height
    assert carried["city_name"].equals(carried["city_name_s7"], check_names=False)
    assert carried["admin1_code"].equals(carried["admin1_code_s7"], check_names=False)
    # every legal country of the tiny world has a GeoNames place, so no site is left unnamed
    assert loc["city_name"].null_count() == 0 and loc["admin1_code"].null_count() == 0
    for (iso2,), grp in loc.group_by(["legal_country_iso"]):
        own = places.filter(pl.col("iso2") == iso2)
        # brute force: the largest dot product of unit vectors is the nearest on the sphere
        dots = (
            unit_vectors(grp["lon_deg"].to_numpy(), grp["lat_deg"].to_numpy())
            @ unit_vectors(own["lon"].to_numpy(), own["lat"].to_numpy()).T
        )
        best = own[np.argmax(dots, axis=1)]
        # a tie between two places of the same country would allow either; none occurs on this world
        assert grp["city_name"].to_list() == best["name"].to_list(), iso2
        assert grp["admin1_code"].to_list() == best["admin1_code"].to_list(), iso2
