"""Geometry law for polygon references: valid, polygonal, split at the antimeridian, EPSG:4326, GeoParquet.

Every polygon artefact goes through `clean_parts` at build time: `shapely.make_valid` (only where the source
geometry is invalid), keep the polygonal parts, split any part that crosses the antimeridian so every part
lies in lon [−180, 180], orient exteriors counter-clockwise, and reject (fail the build on) anything that
is still invalid or out of bounds. Parts are returned in a canonical order (largest first) so part numbers
do not depend on the source's ordering.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pyproj
import shapely
from shapely.geometry import MultiPolygon, Polygon

LON, LAT = 180.0, 90.0
_POLAR = LAT - 1e-9


@dataclass
class Cleaned:
    """Polygon parts of one source geometry and what was done to get them."""

    parts: list[Polygon]
    made_valid: bool = False
    dropped: list[str] = field(default_factory=list)  # geometry types of non-polygonal parts dropped
    split: int = 0  # parts that crossed the antimeridian and were split


def polygonal_parts(geom: shapely.Geometry) -> tuple[list[Polygon], list[str]]:
    """Non-empty Polygons of `geom` (any nesting of collections) and the types of the other parts."""
    if geom.is_empty:
        return [], []
    if isinstance(geom, Polygon):
        return [geom], []
    if isinstance(geom, MultiPolygon) or hasattr(geom, "geoms"):
        polys: list[Polygon] = []
        other: list[str] = []
        for g in geom.geoms:
            p, o = polygonal_parts(g)
            polys.extend(p)
            other.extend(o)
        return polys, other
    return [], [geom.geom_type]


def _jumps(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Edges of a closed ring whose longitude step exceeds 180° (a wrap).

    Edges along a pole, or from one side of the ±180° seam to the other, are edges of the map itself
    (a polygon already drawn in [−180, 180], such as Antarctica), not wraps.
    """
    dx = np.diff(x)
    polar = (np.abs(y[:-1]) >= _POLAR) & (np.abs(y[1:]) >= _POLAR)
    seam = (np.abs(x[:-1]) >= LON) & (np.abs(x[1:]) >= LON)
    return (np.abs(dx) > LON) & ~polar & ~seam


def _unwrap(x: np.ndarray) -> np.ndarray:
    dx = np.diff(x)
    return np.concatenate([x[:1], x[0] + np.cumsum(dx - 360.0 * np.round(dx / 360.0))])


def split_antimeridian(poly: Polygon) -> list[Polygon]:
    """`poly` as parts that each lie in lon [−180, 180]; unchanged when it already does.

    A ring that wraps (a longitude step > 180° between consecutive vertices) is unwrapped into a continuous
    ring, the polygon is cut by the 360°-wide windows it spans, and each piece is shifted back. A ring
    whose unwrapped longitude does not close (it goes round a pole instead of along it) cannot be split
    this way and fails the build.
    """
    rings = [np.asarray(poly.exterior.coords), *(np.asarray(r.coords) for r in poly.interiors)]
    wraps = any(_jumps(r[:, 0], r[:, 1]).any() for r in rings)
    xmin, _, xmax, _ = poly.bounds
    if not wraps and xmin >= -LON and xmax <= LON:
        return [poly]
    fixed = []
    for i, r in enumerate(rings):
        x = _unwrap(r[:, 0]) if wraps else r[:, 0].copy()
        if abs(x[-1] - x[0]) > 1e-9:
            raise ValueError("a ring winds round a pole across the antimeridian; cannot split it")
        if i > 0:  # put each hole in the same 360° copy as the exterior
            centre = 0.5 * (fixed[0][:, 0].min() + fixed[0][:, 0].max())
            x = x + 360.0 * np.round((centre - 0.5 * (x.min() + x.max())) / 360.0)
        fixed.append(np.column_stack([x, r[:, 1]]))
    whole = Polygon(fixed[0], fixed[1:])
    if not whole.is_valid:
        whole = shapely.make_valid(whole)
    lo, _, hi, _ = whole.bounds
    pieces: list[Polygon] = []
    for k in range(int(np.floor((lo + LON) / 360.0)), int(np.ceil((hi - LON) / 360.0)) + 1):
        window = shapely.box(-LON + 360.0 * k, -LAT, LON + 360.0 * k, LAT)
        piece = shapely.transform(shapely.intersection(whole, window), lambda c, k=k: c - [360.0 * k, 0.0])
        pieces.extend(p for p in polygonal_parts(piece)[0] if p.area > 0)
    return pieces


def order_key(p: Polygon) -> tuple[float, ...]:
    return (-p.area, *p.bounds)


def clean_parts(geom: shapely.Geometry, what: str) -> Cleaned:
    """The geometry law applied to one source geometry; raises ValueError naming `what` on failure."""
    made_valid = not shapely.is_valid(geom)
    if made_valid:
        geom = shapely.make_valid(geom)
    polys, dropped = polygonal_parts(geom)
    out: list[Polygon] = []
    split = 0
    for p in polys:
        pieces = split_antimeridian(p)
        split += len(pieces) != 1 or pieces[0] is not p
        out.extend(pieces)
    out = [shapely.orient_polygons(p, exterior_cw=False) for p in out if p.area > 0]
    for p in out:
        if not p.is_valid:
            raise ValueError(f"{what}: a part is still invalid after repair: {shapely.is_valid_reason(p)}")
        x0, y0, x1, y1 = p.bounds
        if x0 < -LON or x1 > LON or y0 < -LAT or y1 > LAT:
            raise ValueError(f"{what}: a part lies outside lon [-180, 180] / lat [-90, 90]: {p.bounds}")
    return Cleaned(sorted(out, key=order_key), made_valid, dropped, split)


def to_wkb(parts: list[Polygon]) -> list[bytes]:
    """ISO WKB, little-endian, 2D: the GeoParquet encoding."""
    return list(
        shapely.to_wkb(np.asarray(parts, dtype=object), output_dimension=2, byte_order=1, flavor="iso")
    )


def geo_metadata(parts: list[Polygon]) -> dict[str, str]:
    """The GeoParquet 1.1 `geo` key for a single WKB Polygon column `geometry` in EPSG:4326 (lon, lat).

    JSON with sorted keys and fixed separators, so equal inputs give equal bytes; the CRS is pyproj's
    PROJJSON of EPSG:4326 (coordinates are stored x = longitude, y = latitude, as GeoParquet requires).
    """
    bbox = [float(v) for v in shapely.total_bounds(np.asarray(parts, dtype=object))]
    meta = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "WKB",
                "geometry_types": ["Polygon"],
                "crs": pyproj.CRS.from_epsg(4326).to_json_dict(),
                "edges": "planar",
                "orientation": "counterclockwise",
                "bbox": bbox,
            }
        },
    }
    return {"geo": json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False)}
