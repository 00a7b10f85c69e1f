"""`ref_tz_polygons`: IANA time-zone boundary polygons, one row per polygon part (GeoParquet, EPSG:4326).

Source: the timezone-boundary-builder data set (OpenStreetMap-derived, ODbL-1.0; the "with oceans" build,
444 zones including the `Etc/GMT±N` ocean zones) as packaged by timezonefinder 7.0.2, read through its
`TimezoneFinder.get_geometry` API (polygons with holes; coordinates stored as 1e-7 degree integers). Later
timezonefinder releases ship a merged "same since now" data set (92 zones in 8.1) or need NumPy 2, so the
pin stays at 7.0.2.

Each zone's polygons go through the geometry law of `engine.refdata.geo` (make_valid where invalid,
antimeridian split, counter-clockwise, validity re-checked); parts are numbered per zone, largest first.
Provenance lists the tzids that `zone.tab` of the pinned tzdata (ref_tz_country) does not list, the
zone.tab tzids without a polygon, and the countries none of whose zone.tab tzids has a polygon.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import polars as pl
from shapely.geometry import Polygon
from timezonefinder import TimezoneFinder

from engine.refdata import geo, tz_country
from engine.refdata.provenance import repair, write_artefact

NAME = "ref_tz_polygons"
SCHEMA = pl.Schema({"tzid": pl.String, "part": pl.UInt32, "geometry": pl.Binary})


def tz_parts() -> tuple[dict[str, list[Polygon]], list[dict[str, str]]]:
    """tzid -> cleaned polygon parts for every zone of the packaged data, and the repairs made."""
    tf = TimezoneFinder(in_memory=True)
    parts: dict[str, list[Polygon]] = {}
    repairs: list[dict[str, str]] = []
    for zone_id, tzid in enumerate(tf.timezone_names):
        polys = []
        for rings in tf.get_geometry(tz_id=zone_id, use_id=True):
            exterior, *holes = (np.column_stack(r).astype(np.float64) for r in rings)
            polys.append(Polygon(exterior, holes))
        # each polygon is cleaned on its own: a zone's polygons may touch, which a MultiPolygon forbids
        made_valid, split, out = 0, 0, []
        for p in polys:
            c = geo.clean_parts(p, tzid)
            made_valid += c.made_valid
            split += c.split
            out.extend(c.parts)
        if not out:
            raise ValueError(f"{tzid}: no polygonal part left after repair")
        if made_valid:
            repairs.append(
                repair(tzid, "replaced", f"{made_valid} invalid polygons repaired with make_valid")
            )
        if split:
            repairs.append(repair(tzid, "replaced", f"{split} polygons split at the antimeridian"))
        if tzid in parts:
            raise ValueError(f"{tzid} appears twice in the timezonefinder zone list")
        parts[tzid] = sorted(out, key=geo.order_key)
    return parts, repairs


def tzdata_zone_names() -> set[str]:
    """Every zone name (canonical or link) the pinned tzdata package compiles."""
    text = importlib.resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return {line.strip() for line in text.splitlines() if line.strip()}


def coverage(tzids: set[str]) -> dict[str, list[str]]:
    """How the polygon zones line up with zone.tab (ref_tz_country) and with the tzdata zone names."""
    pairs = tz_country.zone_tab()
    listed = {tz for _, tz in pairs}
    by_country: dict[str, set[str]] = {}
    for iso2, tz in pairs:
        by_country.setdefault(iso2, set()).add(tz)
    return {
        "not_in_zone_tab": sorted(tzids - listed),
        "zone_tab_without_polygon": sorted(listed - tzids),
        "countries_without_polygon": sorted(c for c, zones in by_country.items() if not zones & tzids),
        "not_in_tzdata": sorted(tzids - tzdata_zone_names()),
    }


def build(out_dir: Path) -> None:
    parts, repairs = tz_parts()
    rows = [(tz, k, wkb) for tz in sorted(parts) for k, wkb in enumerate(geo.to_wkb(parts[tz]))]
    df = pl.DataFrame(rows, schema=SCHEMA, orient="row")
    cover = coverage(set(parts))
    write_artefact(
        NAME,
        df,
        out_dir,
        repairs=repairs,
        notes=[
            "source: timezone-boundary-builder (with oceans), ODbL-1.0, as packaged by timezonefinder, read "
            "with TimezoneFinder.get_geometry; coordinates are the package's 1e-7 degree integers as floats",
            "geometry: WKB Polygon (ISO, little-endian, 2D) in EPSG:4326 lon/lat; one row per part, "
            "sorted by (tzid, part); part 0 is the largest",
            "repairs at build time: shapely.make_valid where invalid, antimeridian split, exteriors "
            "counter-clockwise; a part still invalid or outside lon [-180, 180] fails the build",
            "coverage: tzids missing from tzdata zone.tab (ocean Etc/GMT zones, links) and zone.tab tzids "
            "without a polygon are listed, not repaired",
        ],
        extra={"zones": len(parts), **cover},
        metadata=geo.geo_metadata([p for tz in sorted(parts) for p in parts[tz]]),
    )
