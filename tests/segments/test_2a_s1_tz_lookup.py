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


# ------------------------------------------------------------------- amendment 7: zone1970.tab, overlaps

# A second synthetic world in real coordinates: Xinjiang lies in both Asia/Shanghai and Asia/Urumqi; north
# Vietnam (Hanoi) lies in the Asia/Bangkok polygon, which zone.tab lists for TH only and zone1970.tab for
# TH, CX, KH, LA and VN; Asia/Singapore is zone1970's zone for SG and a part of MY.
TZIDS7 = [
    "Asia/Bangkok",  # 0  TH (zone1970: KH, LA, TH, VN, …)
    "Asia/Ho_Chi_Minh",  # 1  VN
    "Asia/Kuala_Lumpur",  # 2  MY
    "Asia/Kuching",  # 3  MY
    "Asia/Shanghai",  # 4  CN
    "Asia/Singapore",  # 5  SG (zone1970: MY, SG)
    "Asia/Urumqi",  # 6  CN
]
PARTS7 = [
    (shapely.box(97.0, 5.0, 104.0, 23.0), 0),
    (shapely.box(104.0, 17.0, 108.0, 23.0), 0),  # north Vietnam
    (shapely.box(104.0, 8.0, 110.0, 17.0), 1),
    (shapely.box(100.0, 2.0, 104.0, 5.0), 2),
    (shapely.box(109.0, 0.0, 119.0, 5.0), 3),
    (shapely.box(73.0, 18.0, 135.0, 54.0), 4),  # all of China, Xinjiang included
    (shapely.box(103.0, 1.0, 104.5, 2.0), 5),
    (shapely.box(73.0, 35.0, 96.0, 50.0), 6),  # Xinjiang
]
INDEX7 = TzIndex(TZIDS7, [g for g, _ in PARTS7], [t for _, t in PARTS7])
TZ_COUNTRY7 = {
    "CN": ["Asia/Shanghai", "Asia/Urumqi"],
    "MY": ["Asia/Kuala_Lumpur", "Asia/Kuching"],
    "SG": ["Asia/Singapore"],
    "TH": ["Asia/Bangkok"],
    "VN": ["Asia/Ho_Chi_Minh"],
}
ZONE1970 = {
    "CN": ["Asia/Shanghai", "Asia/Urumqi"],
    "MY": ["Asia/Kuching", "Asia/Singapore"],
    "SG": ["Asia/Singapore"],
    "TH": ["Asia/Bangkok"],
    "VN": ["Asia/Bangkok", "Asia/Ho_Chi_Minh"],
}
URUMQI, BEIJING = (87.62, 43.83, "CN"), (116.40, 39.90, "CN")
HANOI, SAIGON = (105.85, 21.03, "VN"), (106.70, 10.78, "VN")


def run7(points: list[tuple[float, float, str]], **kw: object) -> dict:
    lon, lat, iso = zip(*points, strict=True)
    return resolve(
        INDEX7,
        list(lon),
        list(lat),
        list(iso),
        None,
        None,
        TZ_COUNTRY7,
        {},
        EPS,
        **kw,  # type: ignore[arg-type]
    )


def test_xinjiang_site_is_decided_by_the_overlap_policy() -> None:
    res = run7([URUMQI, BEIJING], zone1970=ZONE1970, overlap_preference=["Asia/Urumqi"])
    assert res["tzid"] == ["Asia/Urumqi", "Asia/Shanghai"]
    assert res["resolution_method"] == ["OVERLAP_POLICY", "POLYGON"]
    assert res["tz_index"].tolist() == [6, 4] and res["n_candidates"].tolist() == [2, 1]
    assert np.isnan(res["nearest_km"]).all()
    # the list decides, in its order; a zone that does not cover the site is passed over
    res = run7([URUMQI], overlap_preference=["Asia/Bangkok", "Asia/Shanghai", "Asia/Urumqi"])
    assert (res["tzid"], res["resolution_method"]) == (["Asia/Shanghai"], ["OVERLAP_POLICY"])
    # without a preference the overlap falls to the nearest rung: 0 km, the lower tz_index wins
    res = run7([URUMQI])
    assert (res["tzid"], res["resolution_method"]) == (["Asia/Shanghai"], ["NEAREST_WITHIN"])
    assert res["nearest_km"].tolist() == [0.0]


def test_shipped_overlap_policy_prefers_urumqi() -> None:
    from tests.conftest import shipped_policy

    policy = shipped_policy("2A", "tz_resolution")
    assert policy.overlap_preference == ["Asia/Urumqi"] and policy.zone1970_tzid == "country"
    res = run7(
        [URUMQI, HANOI],
        zone1970=ZONE1970,
        zone1970_tzid=policy.zone1970_tzid,
        overlap_preference=policy.overlap_preference,
    )
    assert res["tzid"] == ["Asia/Urumqi", "Asia/Ho_Chi_Minh"]
    assert res["resolution_method"] == ["OVERLAP_POLICY", "POLYGON"]


def test_hanoi_is_accepted_through_zone1970_as_the_policy_says() -> None:
    # "country" (shipped): Vietnam's one zone.tab zone is published; "polygon": the polygon's own zone
    res = run7([HANOI, SAIGON], zone1970=ZONE1970, zone1970_tzid="country")
    assert res["tzid"] == ["Asia/Ho_Chi_Minh", "Asia/Ho_Chi_Minh"]
    assert res["resolution_method"] == ["POLYGON", "POLYGON"]
    assert res["tz_index"].tolist() == [1, 1] and res["n_candidates"].tolist() == [1, 1]
    res = run7([HANOI, SAIGON], zone1970=ZONE1970, zone1970_tzid="polygon")
    assert res["tzid"] == ["Asia/Bangkok", "Asia/Ho_Chi_Minh"]
    assert res["resolution_method"] == ["POLYGON", "POLYGON"]
    assert res["tz_index"].tolist() == [0, 1]
    # without zone1970.tab (zone.tab only) Hanoi has no candidate and lands on the singleton rung
    res = run7([HANOI])
    assert (res["tzid"], res["resolution_method"]) == (["Asia/Ho_Chi_Minh"], ["COUNTRY_SINGLETON"])
    assert res["n_candidates"].tolist() == [0]


def test_zone1970_in_a_multi_zone_country_keeps_the_polygon_zone() -> None:
    # Johor Bahru-like point inside Asia/Singapore only: MY has two zones, so even "country" cannot map it
    res = run7([(103.75, 1.50, "MY")], zone1970=ZONE1970, zone1970_tzid="country")
    assert (res["tzid"], res["resolution_method"]) == (["Asia/Singapore"], ["POLYGON"])
    # zone1970 widens the candidates of its own countries only: a Thai site in Vietnam's zone is not one
    res = run7([(106.70, 10.78, "TH")], zone1970=ZONE1970)
    assert (res["tzid"], res["resolution_method"]) == (["Asia/Bangkok"], ["COUNTRY_SINGLETON"])


def test_zone1970_only_zone_nudge_and_unknown_preference() -> None:
    # on Hanoi's polygon's south edge: Bangkok and Ho Chi Minh both cover it; the nudge lands in Bangkok
    res = run7([(105.0, 17.0, "VN")], zone1970=ZONE1970, zone1970_tzid="polygon")
    assert (res["tzid"], res["resolution_method"]) == (["Asia/Bangkok"], ["NUDGE"])
    with pytest.raises(ValueError, match="overlap preference Mars/Base"):
        run7([URUMQI], overlap_preference=["Mars/Base"])
    with pytest.raises(ValueError, match="zone1970_tzid"):
        run7([URUMQI], zone1970_tzid="both")


def test_single_zone_singleton_is_not_a_fallback_for_r02_r03() -> None:
    from engine.segments.l1.s2a.s5_validation import FALLBACK, fallback_shares

    assert "COUNTRY_SINGLETON" not in FALLBACK and "OVERLAP_POLICY" not in FALLBACK
    stz = pl.DataFrame(
        {
            "legal_country_iso": ["LU"] * 200 + ["US"] * 100 + ["CN"] * 50,
            "resolution_method": ["COUNTRY_SINGLETON"] * 150
            + ["POLYGON"] * 50
            + ["NEAREST_WITHIN"] * 6
            + ["POLYGON"] * 94
            + ["OVERLAP_POLICY"] * 40
            + ["NEAREST_BEYOND"] * 10,
        }
    )
    share, country_max, n_big = fallback_shares(stz, 100)
    assert (share, country_max, n_big) == (16 / 350, 0.06, 2)  # CN (50 sites) is under min_sites
    assert fallback_shares(stz.filter(pl.col("legal_country_iso") == "LU"), 100) == (0.0, 0.0, 1)


def test_r01_accepts_zone_tab_and_zone1970_pairs() -> None:
    from engine.segments.l1.s2a.s5_validation import listed_sites

    ref = pl.DataFrame(
        {
            "iso2": ["TH", "VN"],
            "tzid": ["Asia/Bangkok", "Asia/Ho_Chi_Minh"],
            "zone1970": [["KH", "LA", "TH", "VN"], ["VN"]],
        }
    )
    stz = pl.DataFrame(
        {
            "legal_country_iso": ["VN", "VN", "TH", "TH"],
            "tzid": ["Asia/Bangkok", "Asia/Ho_Chi_Minh", "Asia/Bangkok", "Asia/Ho_Chi_Minh"],
        }
    )
    assert listed_sites(stz, ref) == 3  # a Thai site in Asia/Ho_Chi_Minh is listed by neither file


def test_country_zone_is_published_only_where_the_clocks_agree() -> None:
    seen: list[tuple[str, str]] = []

    def differ(a: str, b: str) -> bool:
        seen.append((a, b))
        return False

    res = run7([HANOI, HANOI, SAIGON], zone1970=ZONE1970, same_clock=differ)
    assert res["tzid"] == ["Asia/Bangkok", "Asia/Bangkok", "Asia/Ho_Chi_Minh"]
    assert res["resolution_method"] == ["POLYGON"] * 3
    assert seen == [("Asia/Bangkok", "Asia/Ho_Chi_Minh")]  # asked once per (country, zone)


def test_same_clock_over_the_default_cache_window() -> None:
    from engine.core.config import load_run_config
    from engine.segments.l1.s2a.s1_tz_lookup import same_clock_over

    same = same_clock_over(*load_run_config({"preset": "default"}).horizon.window())
    assert same("Asia/Bangkok", "Asia/Ho_Chi_Minh") and same("Europe/Brussels", "Europe/Luxembourg")
    assert not same("Asia/Dubai", "Indian/Kerguelen")  # zone1970.tab lists TF (Crozet) under Asia/Dubai


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-20, 20), st.floats(-20, 20)), min_size=1, max_size=60))
def test_candidate_counts_equal_a_point_by_point_covers(points: list[tuple[float, float]]) -> None:
    """The resolver queries from the parts' side (an STRtree over the points); per point, its count of
    distinct candidate zones must equal shapely.covers tested part by part, edges and holes included."""
    from engine.segments.l1.s2a.resolver import TzIndex, _candidates

    parts = [
        shapely.box(-10, -10, 0, 0),
        shapely.box(0, -10, 10, 0),  # shares the edge x = 0 with the first: a point on it is in both
        shapely.Polygon([(-15, 0), (15, 0), (0, 15)]),
        shapely.box(-5, -5, 5, 5).difference(shapely.box(-1, -1, 1, 1)),  # a hole
        shapely.box(12, -10, 14, -8),  # a second part of zone 0
    ]
    part_tz = np.array([0, 1, 2, 3, 0])
    index = TzIndex(["A/a", "B/b", "C/c", "D/d"], parts, part_tz)
    xy = np.array(points)
    n = len(points)
    code = np.zeros(n, dtype=np.int64)
    allowed = np.arange(4, dtype=np.int64)  # country 0 lists every zone
    count, single, _ = _candidates(index, xy[:, 0], xy[:, 1], code, allowed, np.full(4, 2**62))
    for k, (x, y) in enumerate(points):
        zones = {int(part_tz[i]) for i, g in enumerate(parts) if shapely.covers(g, shapely.Point(x, y))}
        assert count[k] == len(zones)
        if len(zones) == 1:
            assert single[k] == zones.pop()
