"""2A.S1: the tz resolver's ladder on border cases — shared border, sea near a coast, the antimeridian,
a single-zone country, overrides."""

import numpy as np
import pyproj
import pytest
import shapely

from engine.core.errors import EngineError
from engine.segments.l1.s2a.resolver import Override, TzIndex, resolve

# country AA has two zones side by side (border at lon 10); BB has one zone; CC straddles the antimeridian
TZIDS = [
    "Zone/East",
    "Zone/Empty",
    "Zone/Empty2",
    "Zone/Island",
    "Zone/Single",
    "Zone/West",
]  # Empty*: no polygon
PARTS = [
    (shapely.box(0.0, 0.0, 10.0, 10.0), 5),  # Zone/West
    (shapely.box(10.0, 0.0, 20.0, 10.0), 0),  # Zone/East
    (shapely.box(30.0, 0.0, 40.0, 10.0), 4),  # Zone/Single
    (shapely.box(179.0, -20.0, 180.0, -10.0), 3),  # Zone/Island, east of the antimeridian split …
    (shapely.box(-180.0, -20.0, -179.0, -10.0), 3),  # … and its western part
]
TZ_COUNTRY = {
    "AA": ["Zone/East", "Zone/West"],
    "BB": ["Zone/Single"],
    "CC": ["Zone/Island"],
    "DD": ["Zone/Empty", "Zone/Empty2"],
}
EPS = 0.002
INDEX = TzIndex(TZIDS, [g for g, _ in PARTS], [t for _, t in PARTS])


def run(
    lon: list[float], lat: list[float], iso: list[str], overrides: dict | None = None, **kw: object
) -> dict:
    return resolve(INDEX, lon, lat, iso, kw.get("site_id"), kw.get("mcc"), TZ_COUNTRY, overrides or {}, EPS)


def test_inside_is_polygon_and_a_shared_border_is_nudged() -> None:
    res = run([5.0, 10.0], [5.0, 5.0], ["AA", "AA"])
    assert list(res["resolution_method"]) == ["POLYGON", "NUDGE"]
    assert list(res["tzid"]) == ["Zone/West", "Zone/East"]  # +ε lon lands east of the border
    assert list(res["n_candidates"]) == [1, 2]


def test_sea_points_near_and_far_from_the_coast() -> None:
    res = run([20.001, 21.0], [5.0, 5.0], ["AA", "AA"])
    assert list(res["resolution_method"]) == ["NEAREST_WITHIN", "NEAREST_BEYOND"]
    geod = pyproj.Geod(ellps="WGS84")
    assert res["nearest_km"][1] == pytest.approx(geod.inv(21.0, 5.0, 20.0, 5.0)[2] / 1000, rel=1e-3)
    assert list(res["tzid"]) == ["Zone/East", "Zone/East"]


def test_single_zone_country_and_antimeridian() -> None:
    res = run([45.0, 179.999, -180.0, -179.5], [5.0, -15.0, -15.0, -15.0], ["BB", "CC", "CC", "CC"])
    assert next(iter(res["resolution_method"])) == "COUNTRY_SINGLETON"
    assert list(res["tzid"]) == ["Zone/Single"] + ["Zone/Island"] * 3
    assert set(list(res["resolution_method"])[1:]) <= {"POLYGON", "NUDGE"}


def test_override_precedence_site_over_mcc_over_country() -> None:
    sea = ([50.0, 50.0, 50.0], [50.0, 50.0, 50.0], ["AA", "AA", "AA"])
    overrides = {
        ("country", "AA"): Override("country", "AA", "Zone/West", "country rule"),
        ("mcc", "5411"): Override("mcc", "5411", "Zone/East", "mcc rule"),
        ("site", "7"): Override("site", "7", "Zone/West", "site rule"),
    }
    res = run(*sea, overrides, site_id=np.array([7, 8, 9], dtype=np.uint64), mcc=np.array([5411, 5411, 1234]))
    assert list(res["resolution_method"]) == ["OVERRIDE_SITE", "OVERRIDE_MCC", "OVERRIDE_COUNTRY"]
    assert list(res["tzid"]) == ["Zone/West", "Zone/East", "Zone/West"]


def test_country_without_any_zone_polygon_is_an_error() -> None:
    with pytest.raises(EngineError) as err:
        run([0.0], [0.0], ["DD"])
    assert err.value.code == "E_2A_NO_TZ_FOR_COUNTRY"


def test_result_does_not_depend_on_input_order() -> None:
    lon, lat, iso = (
        [5.0, 10.0, 20.001, 45.0, 179.999],
        [5.0, 5.0, 5.0, 5.0, -15.0],
        ["AA", "AA", "AA", "BB", "CC"],
    )
    a = run(lon, lat, iso)
    b = run(lon[::-1], lat[::-1], iso[::-1])
    assert list(a["tzid"]) == list(b["tzid"])[::-1]
    assert list(a["resolution_method"]) == list(b["resolution_method"])[::-1]
