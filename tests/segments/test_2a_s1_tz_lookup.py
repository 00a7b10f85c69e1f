"""The tz resolver (2A.S1) on a synthetic world: every rung of the ladder, overrides, the antimeridian."""

import datetime as dt

import numpy as np
import polars as pl
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from engine.core.errors import EngineError
from engine.segments.l1.s2a.resolver import (
    METHODS,
    Override,
    TzIndex,
    active_overrides,
    nudge,
    resolve,
)

GEOD = Geod(ellps="WGS84")
EPS = 0.002
START = dt.date(2026, 1, 5)
TZIDS = [
    "America/Chicago",  # 0  US, west box
    "America/New_York",  # 1  US, east box (shared border at lon −90)
    "Asia/Anadyr",  # 2  RU, crosses the antimeridian: two parts
    "Asia/Kamchatka",  # 3  RU
    "Asia/Tokyo",  # 4  JP, the only zone of its country
    "Pacific/Kanton",  # 5  KI, east of the antimeridian
    "Pacific/Tarawa",  # 6  KI, west of the antimeridian
    "Zone/NoPolyA",  # 7  XX, no polygon
    "Zone/NoPolyB",  # 8  XX, no polygon
]
PARTS = [
    (shapely.box(-100.0, 30.0, -90.0, 40.0), 0),
    (shapely.box(-90.0, 30.0, -80.0, 40.0), 1),
    (shapely.box(175.0, 60.0, 180.0, 70.0), 2),
    (shapely.box(-180.0, 60.0, -170.0, 70.0), 2),
    (shapely.box(160.0, 50.0, 175.0, 60.0), 3),
    (shapely.box(130.0, 30.0, 140.0, 40.0), 4),
    (shapely.box(-180.0, -5.0, -175.0, 5.0), 5),
    (shapely.box(172.0, -5.0, 180.0, 5.0), 6),
]
TZ_COUNTRY = {
    "US": ["America/Chicago", "America/New_York"],
    "RU": ["Asia/Anadyr", "Asia/Kamchatka"],
    "JP": ["Asia/Tokyo"],
    "KI": ["Pacific/Kanton", "Pacific/Tarawa"],
    "XX": ["Zone/NoPolyA", "Zone/NoPolyB"],
}
INDEX = TzIndex(TZIDS, [g for g, _ in PARTS], [t for _, t in PARTS])


def run(points: list[tuple[float, float, str]], overrides: dict | None = None, **kw: object) -> dict:
    lon, lat, iso = zip(*points, strict=True) if points else ((), (), ())
    return resolve(
        INDEX,
        list(lon),
        list(lat),
        list(iso),
        kw.get("site_id"),
        kw.get("mcc"),
        TZ_COUNTRY,
        overrides or {},
        EPS,
    )


def km(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    return GEOD.inv(lon0, lat0, lon1, lat1)[2] / 1000.0


# ------------------------------------------------------------------------------------ polygon and nudge


def test_inside_a_zone_is_polygon() -> None:
    res = run([(-95.0, 35.0, "US"), (-85.0, 35.0, "US"), (135.0, 35.0, "JP")])
    assert res["tzid"] == ["America/Chicago", "America/New_York", "Asia/Tokyo"]
    assert res["resolution_method"] == ["POLYGON"] * 3
    assert res["tz_index"].dtype == np.uint16 and res["tz_index"].tolist() == [0, 1, 4]
    assert res["n_candidates"].dtype == np.uint8 and res["n_candidates"].tolist() == [1, 1, 1]
    assert np.isnan(res["nearest_km"]).all()


def test_shared_border_is_nudged_into_the_zone_the_nudge_lands_in() -> None:
    res = run([(-90.0, 35.0, "US"), (-90.0, 30.0, "US")])  # on the border; on the border's south corner
    assert res["resolution_method"] == ["NUDGE", "NUDGE"]
    assert res["tzid"] == ["America/New_York", "America/New_York"]  # +ε lon is east of the border
    assert res["n_candidates"].tolist() == [2, 2]  # counted at the original point


def test_only_zones_listed_for_the_country_are_candidates() -> None:
    res = run([(-95.0, 35.0, "JP")])  # inside a US zone, but a Japanese site
    assert res["tzid"] == ["Asia/Tokyo"] and res["resolution_method"] == ["COUNTRY_SINGLETON"]
    assert res["n_candidates"].tolist() == [0]


def test_nudge_wraps_longitude_and_clamps_latitude() -> None:
    lon, lat = nudge(np.array([179.999, -180.0, 0.0]), np.array([89.9995, -90.0, 0.0]), EPS)
    assert lon == pytest.approx([-179.999, -179.998, 0.002], abs=1e-9)
    assert lat == pytest.approx([90.0, -89.998, 0.002], abs=1e-12)
    assert (lon >= -180.0).all() and (lon < 180.0).all()


# ------------------------------------------------------------------------------------ fallbacks


def test_sea_point_near_the_coast_is_nearest_within() -> None:
    res = run([(-79.999, 35.0, "US")])
    assert res["resolution_method"] == ["NEAREST_WITHIN"] and res["tzid"] == ["America/New_York"]
    assert res["nearest_km"][0] == pytest.approx(km(-79.999, 35.0, -80.0, 35.0), rel=1e-9)
    assert res["nearest_km"][0] <= EPS * 111.0


def test_sea_point_far_from_the_coast_is_nearest_beyond() -> None:
    res = run([(-79.0, 35.0, "US"), (-101.0, 36.0, "US")])
    assert res["resolution_method"] == ["NEAREST_BEYOND", "NEAREST_BEYOND"]
    assert res["tzid"] == ["America/New_York", "America/Chicago"]
    assert res["nearest_km"][0] == pytest.approx(km(-79.0, 35.0, -80.0, 35.0), rel=1e-9)
    assert res["nearest_km"][1] == pytest.approx(km(-101.0, 36.0, -100.0, 36.0), rel=1e-9)


def test_nearest_ties_go_to_the_lower_tz_index() -> None:
    res = run([(-90.0, 41.0, "US")])  # due north of the shared border: both boxes 1° of latitude away
    assert res["resolution_method"] == ["NEAREST_BEYOND"] and res["tzid"] == ["America/Chicago"]
    assert res["nearest_km"][0] == pytest.approx(km(-90.0, 41.0, -90.0, 40.0), rel=1e-9)


def test_nearest_measures_across_the_antimeridian() -> None:
    # east of the antimeridian at lat 55: Kamchatka's east edge (175° E) is 6° of longitude away across it;
    # Anadyr's western part is 5° of latitude away (farther); planar lon/lat would pick Anadyr
    res = run([(-179.0, 55.0, "RU")])
    assert res["tzid"] == ["Asia/Kamchatka"]
    assert res["nearest_km"][0] == pytest.approx(km(-179.0, 55.0, 175.0, 55.0), rel=1e-9)
    assert res["nearest_km"][0] < km(-179.0, 55.0, -179.0, 60.0)


def test_single_zone_country_sea_point_is_country_singleton() -> None:
    res = run([(150.0, 35.0, "JP")])
    assert res["resolution_method"] == ["COUNTRY_SINGLETON"] and res["tzid"] == ["Asia/Tokyo"]
    assert np.isnan(res["nearest_km"][0])


@pytest.mark.parametrize("iso", ["XX", "ZZ"])  # zones without polygons; a country with no zone at all
def test_country_without_polygon_is_an_error(iso: str) -> None:
    with pytest.raises(EngineError) as err:
        run([(-95.0, 35.0, "US"), (0.0, 0.0, iso)])
    assert err.value.code == "E_2A_NO_TZ_FOR_COUNTRY"


# ------------------------------------------------------------------------------------ antimeridian


def test_points_either_side_of_the_antimeridian() -> None:
    res = run([(179.999, 0.0, "KI"), (-180.0, 0.0, "KI"), (179.999, 65.0, "RU"), (-180.0, 65.0, "RU")])
    assert res["tzid"] == ["Pacific/Tarawa", "Pacific/Kanton", "Asia/Anadyr", "Asia/Anadyr"]
    assert res["resolution_method"] == ["POLYGON"] * 4


# ------------------------------------------------------------------------------------ overrides


def test_override_precedence_site_over_mcc_over_country() -> None:
    active = active_overrides(
        [
            Override("country", "US", "America/Chicago", "country rule"),
            Override("mcc", "5411", "America/New_York", "mcc rule"),
            Override("site", "7", "America/Chicago", "site rule"),
        ],
        START,
        tz_country=TZ_COUNTRY,
        target_countries={("site", "7"): ["US"], ("mcc", "5411"): ["US"]},
    )
    sea = [(-70.0, 35.0, "US")] * 4
    res = run(
        sea,
        active,
        site_id=np.array([7, 8, 9, 7], dtype=np.uint64),
        mcc=np.array([5411, 5411, 1234, 1234], dtype=np.uint16),
    )
    assert res["resolution_method"] == ["OVERRIDE_SITE", "OVERRIDE_MCC", "OVERRIDE_COUNTRY", "OVERRIDE_SITE"]
    assert res["tzid"] == ["America/Chicago", "America/New_York", "America/Chicago", "America/Chicago"]
    assert np.isnan(res["nearest_km"]).all()


def test_overrides_never_beat_polygon_or_nudge() -> None:
    active = active_overrides([Override("country", "US", "America/Chicago", "rule")], START)
    res = run([(-85.0, 35.0, "US"), (-90.0, 35.0, "US")], active)
    assert res["resolution_method"] == ["POLYGON", "NUDGE"]
    assert res["tzid"] == ["America/New_York", "America/New_York"]


def test_without_site_and_mcc_only_country_scope_applies() -> None:
    active = active_overrides(
        [Override("site", "1", "America/Chicago", "r"), Override("country", "US", "America/New_York", "r")],
        START,
    )
    res = run([(-70.0, 35.0, "US")], active)  # site_id and mcc None, as 3A and 3B call it
    assert res["resolution_method"] == ["OVERRIDE_COUNTRY"] and res["tzid"] == ["America/New_York"]


def test_expiry_is_judged_against_the_horizon_start() -> None:
    expired = Override("country", "US", "America/Chicago", "old", dt.date(2026, 1, 4))
    last_day = Override("country", "JP", "Asia/Tokyo", "ends at the start", dt.date(2026, 1, 5))
    open_ended = Override("mcc", "5411", "America/New_York", "open")
    active = active_overrides([expired, last_day, open_ended], START)
    assert sorted(active) == [("country", "JP"), ("mcc", "5411")]
    res = run([(-70.0, 35.0, "US")], active)
    assert res["resolution_method"] == ["NEAREST_BEYOND"]  # the expired country rule is ignored
    # a horizon that starts earlier sees the same entry as active
    assert ("country", "US") in active_overrides([expired], dt.date(2026, 1, 4))


def test_duplicate_active_override_is_refused() -> None:
    a = Override("site", "42", "America/Chicago", "one")
    b = Override("site", "0042", "America/New_York", "same site, other spelling")
    with pytest.raises(EngineError) as err:
        active_overrides([a, b], START)
    assert err.value.code == "E_2A_OVERRIDE_DUPLICATE"
    # one of the two expired before the horizon: no conflict
    old = Override("site", "42", "America/New_York", "old", dt.date(2025, 12, 1))
    assert list(active_overrides([a, old], START).values()) == [a]


def test_override_tzid_must_be_a_zone_of_its_target_country() -> None:
    cases = [
        ([Override("country", "JP", "America/Chicago", "wrong")], {}),
        ([Override("site", "7", "Asia/Tokyo", "wrong")], {("site", "7"): ["US"]}),
        ([Override("mcc", "5411", "America/Chicago", "wrong")], {("mcc", "5411"): ["US", "JP"]}),
    ]
    for overrides, countries in cases:
        with pytest.raises(EngineError) as err:
            active_overrides(overrides, START, tz_country=TZ_COUNTRY, target_countries=countries)
        assert err.value.code == "E_2A_OVERRIDE_TZID"
    # a site the caller knows no country for is inert and passes
    active_overrides([Override("site", "8", "Asia/Tokyo", "r")], START, tz_country=TZ_COUNTRY)


def test_resolve_refuses_to_apply_a_tzid_foreign_to_the_site_country() -> None:
    active = active_overrides([Override("mcc", "5411", "Asia/Tokyo", "unchecked")], START)
    with pytest.raises(EngineError) as err:
        run([(-70.0, 35.0, "US")], active, mcc=np.array([5411]))
    assert err.value.code == "E_2A_OVERRIDE_TZID"


# ------------------------------------------------------------------------------------ index and inputs


def test_index_from_table_drops_unlisted_zones_and_refuses_invalid_parts() -> None:
    table = pl.DataFrame(
        {
            "tzid": ["America/Chicago", "Etc/Unlisted", "America/New_York"],
            "part": [0, 0, 0],
            "geometry": shapely.to_wkb([PARTS[0][0], shapely.box(0, 0, 1, 1), PARTS[1][0]]).tolist(),
        }
    )
    index = TzIndex.from_table(TZIDS, table)
    assert index.dropped_tzids == ["Etc/Unlisted"]
    assert index.part_tz.tolist() == [0, 1]
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    with pytest.raises(EngineError) as err:
        TzIndex(TZIDS, [bowtie], [0])
    assert err.value.code == "E_GEOMETRY_INVALID"
    with pytest.raises(ValueError):
        TzIndex(["b", "a"], [], [])


def test_empty_batch_and_bad_coordinates() -> None:
    res = run([])
    assert res["tzid"] == [] and res["tz_index"].size == 0
    with pytest.raises(ValueError):
        run([(180.0, 0.0, "KI")])
    with pytest.raises(ValueError):
        run([(0.0, float("nan"), "US")])


# ------------------------------------------------------------------------------------ property

SPECIAL = [
    (-90.0, 35.0, "US"),
    (-79.999, 35.0, "US"),
    (-90.0, 41.0, "US"),
    (150.0, 35.0, "JP"),
    (179.999, 0.0, "KI"),
    (-180.0, 0.0, "KI"),
    (-179.0, 55.0, "RU"),
    (-180.0, 65.0, "RU"),
]
POINT = st.one_of(
    st.sampled_from(SPECIAL),
    st.tuples(
        st.floats(-180.0, 179.999999, allow_nan=False),
        st.floats(-90.0, 90.0, allow_nan=False),
        st.sampled_from(["US", "RU", "JP", "KI"]),
    ),
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(POINT, min_size=1, max_size=12).flatmap(
        lambda p: st.tuples(st.just(p), st.permutations(range(len(p))))
    )
)
def test_resolve_does_not_depend_on_input_order(case: tuple[list, list[int]]) -> None:
    points, order = case
    active = active_overrides([Override("country", "RU", "Asia/Kamchatka", "r")], START)
    a = run(points, active)
    b = run([points[k] for k in order], active)
    assert [_row(a, k) for k in order] == [_row(b, j) for j in range(len(order))]
    assert set(a["resolution_method"]) <= set(METHODS)


def _row(res: dict, k: int) -> tuple:
    near = res["nearest_km"][k]
    return (
        res["tzid"][k],
        int(res["tz_index"][k]),
        res["resolution_method"][k],
        int(res["n_candidates"][k]),
        None if np.isnan(near) else float(near),
    )
