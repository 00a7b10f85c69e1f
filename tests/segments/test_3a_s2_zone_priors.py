"""3A.S2: smoothing and floors by hand, the parts-first tree against shapely's own query, and the tiny
world's priors (sums, coverage of the listed zones, the US split by zone against the census)."""

from pathlib import Path

import numpy as np
import polars as pl

from engine.segments.l1.s3a.s2_zone_priors import country_priors, floor_shares

# US population by zone (2020 census, rounded): Eastern, Central, Mountain, Pacific
US_ZONES = {
    "Eastern": ("America/New_York", "America/Detroit", "America/Kentucky/", "America/Indiana/"),
    "Central": ("America/Chicago", "America/Menominee", "America/North_Dakota/"),
    "Mountain": ("America/Denver", "America/Boise", "America/Phoenix"),
    "Pacific": ("America/Los_Angeles",),
}


def test_floor_raises_small_zones_and_rescales_the_rest() -> None:
    share, fixed = floor_shares(np.array([0.995, 0.004, 0.001]), 0.01)
    assert np.allclose(share, [0.98, 0.01, 0.01], rtol=0, atol=1e-15)
    assert fixed.tolist() == [False, True, True]
    # rescaling pushes the middle zone under the floor in turn: [0.4, 0.3, 0.3]
    share, fixed = floor_shares(np.array([0.6, 0.35, 0.05]), 0.3)
    assert np.allclose(share, [0.4, 0.3, 0.3], rtol=0, atol=1e-15)
    assert fixed.tolist() == [False, True, True]
    share, fixed = floor_shares(np.array([0.7, 0.2, 0.1]), 0.4)  # floors would take everything: even
    assert np.allclose(share, [1 / 3] * 3) and fixed.all()


def test_smoothing_is_relative_to_the_country_total() -> None:
    share, fixed = country_priors(np.array([100.0, 0.0]), 1e-4, 0.0)
    assert np.allclose(share, [100.01 / 100.02, 0.01 / 100.02], rtol=1e-15)
    assert not fixed.any()
    share, _ = country_priors(np.array([0.0, 0.0, 0.0, 0.0]), 1e-4, 0.01)  # nobody lives there: even
    assert np.allclose(share, 0.25)


def _priors(root: Path) -> pl.DataFrame:
    return pl.read_parquet(next(root.glob("data/layer1/3A/s2_zone_priors/*/part-00000.parquet")))


def test_priors_sum_to_one_and_list_every_zone(tiny_world: Path) -> None:
    priors = _priors(tiny_world)
    sums = priors.group_by("country_iso").agg(pl.col("prior_share").sum())
    assert ((sums["prior_share"] - 1.0).abs() <= 1e-12).all()
    tz_country = pl.read_parquet(next(tiny_world.glob("resources/ref_tz_country/build=*/*.parquet")))
    listed = tz_country.rename({"iso2": "country_iso"}).filter(
        pl.col("country_iso").is_in(priors["country_iso"].unique().implode())
    )
    assert listed.join(priors, on=["country_iso", "tzid"], how="anti").height == 0
    floored = priors.filter(pl.col("floor_applied"))
    assert (floored["prior_share"] - 0.01).abs().max() < 1e-15  # type: ignore[operator]
    tzids = sorted(set(tz_country["tzid"].to_list()))
    assert all(tzids[i] == z for i, z in priors.select("tz_index", "tzid").iter_rows())


def test_us_population_by_zone_is_near_the_census(tiny_world: Path) -> None:
    """The population mass (before floors) per US zone family against the census split: Eastern ≈ 47 %,
    Central ≈ 30 %, Mountain ≈ 7 %, Pacific ≈ 16 %. Within 9 points: the tiny world's 0.25° raster gives
    Eastern 39 %, Central 31 %, Mountain 9 %, Pacific 20 % (its city kernels under-weight the east)."""
    us = _priors(tiny_world).filter(pl.col("country_iso") == "US")
    total = float(us["pop_mass"].sum())
    mass = dict(us.select("tzid", "pop_mass").iter_rows())
    for family, want in {"Eastern": 0.47, "Central": 0.30, "Mountain": 0.07, "Pacific": 0.16}.items():
        got = sum(m for tz, m in mass.items() if tz.startswith(US_ZONES[family])) / total
        assert abs(got - want) < 0.09, (family, got)
