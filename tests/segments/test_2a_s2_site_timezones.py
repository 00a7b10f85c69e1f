"""2A.S1/S2 on the tiny world: one listed tzid per site, methods recorded, summary consistent."""

import json
from pathlib import Path

import polars as pl

from engine.segments.l1.s2a.resolver import METHODS


def _part(root: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(next(root.glob(f"data/layer1/2A/{name}/seed=42/*/part-00000.parquet")))


def test_every_site_has_a_listed_zone_and_a_method(tiny_world: Path) -> None:
    stz = _part(tiny_world, "site_timezones")
    loc = pl.read_parquet(next(tiny_world.glob("data/layer1/1B/site_locations/seed=42/*/part-00000.parquet")))
    assert stz["site_id"].sort().equals(loc["site_id"].sort())
    tz_country = pl.read_parquet(next(tiny_world.glob("resources/ref_tz_country/build=*/*.parquet")))
    listed = stz.join(
        tz_country.rename({"iso2": "legal_country_iso"}), on=["legal_country_iso", "tzid"], how="semi"
    )
    assert listed.height == stz.height
    assert set(stz["resolution_method"].unique()) <= set(METHODS)
    assert (stz["resolution_method"] == "POLYGON").mean() > 0.95
    tzids = sorted(set(tz_country["tzid"].to_list()))
    assert all(tzids[i] == z for i, z in stz.select("tz_index", "tzid").unique().iter_rows())


def test_tz_in_use_and_summary_agree(tiny_world: Path) -> None:
    stz = _part(tiny_world, "site_timezones")
    in_use = _part(tiny_world, "tz_in_use")
    assert int(in_use["n_sites"].sum()) == stz.height
    summary = json.loads(
        next(tiny_world.glob("reports/2A/s2_site_timezones/seed=42/*/s2_resolution_summary.json")).read_text()
    )
    assert summary["global"] == dict(stz.group_by("resolution_method").len().iter_rows())
