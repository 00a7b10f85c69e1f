"""1B.S8 on the tiny world: the egress is sorted, complete, and every point is inside its country."""

from pathlib import Path

import polars as pl
import shapely

from engine.segments.l1.s1b.geo import CountryShapes


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
