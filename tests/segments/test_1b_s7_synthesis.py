"""1B.S7: nearest-city distance on the sphere and each site's nearest place of its own country."""

import numpy as np
import polars as pl
import pytest

from engine.segments.l1.s1b.s7_synthesis import nearest_city_km, nearest_place


def test_nearest_city_distance_is_great_circle() -> None:
    cities = pl.DataFrame({"lon": [0.0, 179.9], "lat": [0.0, 0.0]})
    d = nearest_city_km(np.array([1.0, -179.9]), np.array([0.0, 0.0]), cities)
    assert d[0] == pytest.approx(111.195, rel=1e-4)  # 1° of arc on the mean sphere
    assert d[1] == pytest.approx(22.239, rel=1e-3)  # across the antimeridian, not 359.8°


PLACES = pl.DataFrame(
    {
        "iso2": ["AA", "BB", "AA", "AA", "AA"],
        "name": ["Alpha", "Beta", "Gamma", "East", "West"],
        "admin1_code": ["01", "ENG", "00", "", "07"],
        "lon": [0.0, 1.0, 3.0, 179.9, -178.0],
        "lat": [0.0, 0.0, 0.0, 10.0, 10.0],
    }
)


def places_of(sites: list[tuple[str, float, float]]) -> list[tuple[str | None, str | None]]:
    frame = pl.DataFrame(sites, schema=["iso2", "lon", "lat"], orient="row")
    return list(nearest_place(frame, PLACES).iter_rows())


def test_site_on_a_place_gets_its_name_and_admin1() -> None:
    assert places_of([("AA", 0.0, 0.0), ("AA", 3.0, 0.0), ("BB", 1.0, 0.0)]) == [
        ("Alpha", "01"),
        ("Gamma", "00"),
        ("Beta", "ENG"),
    ]


def test_border_site_gets_its_own_country_place_though_a_foreign_one_is_nearer() -> None:
    # 0.1° from BB's Beta, 0.9° from AA's Alpha: an AA site is still in Alpha; a BB site far away is in Beta
    assert places_of([("AA", 0.9, 0.0), ("BB", -5.0, 0.0)]) == [("Alpha", "01"), ("Beta", "ENG")]


def test_nearest_is_on_the_sphere_across_the_antimeridian() -> None:
    # 0.2° from East (179.9), 1.9° from West (-178.0); in plain lon degrees West would look nearer
    assert places_of([("AA", -179.9, 10.0), ("AA", -178.5, 10.0)]) == [("East", ""), ("West", "07")]


def test_interleaved_countries_keep_site_order_and_a_country_without_places_is_null() -> None:
    sites = [("BB", 0.0, 0.0), ("CC", 0.0, 0.0), ("AA", 2.1, 0.0), ("BB", 9.0, 0.0), ("AA", 1.4, 0.0)]
    assert places_of(sites) == [
        ("Beta", "ENG"),
        (None, None),
        ("Gamma", "00"),
        ("Beta", "ENG"),
        ("Alpha", "01"),
    ]
