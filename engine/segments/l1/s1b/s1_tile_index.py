"""1B.S1 — the raster cells that belong to each country, with bounds, area and an interior flag."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyproj
import rasterio
import shapely
from rasterio import features
from rasterio.windows import Window

from engine.core.errors import EngineError
from engine.core.proj_guard import ensure_proj_data
from engine.core.state import StateContext
from engine.segments.l1.s1b.geo import CountryShapes, Grid
from engine.segments.l1.s1b.policy import Tiles

COLUMNS = [
    "country_iso",
    "tile_id",
    "row",
    "col",
    "lon_min",
    "lat_min",
    "lon_max",
    "lat_max",
    "lon_c",
    "lat_c",
    "area_km2",
    "interior",
    "inclusion",
]


def _cells(
    parts: list[shapely.Geometry], grid: Grid, transform: rasterio.Affine, all_touched: bool
) -> set[int]:
    """Global tile ids (row·ncols + col) of the cells a country's parts select."""
    ids: set[int] = set()
    for part in parts:
        row0, col0, row1, col1 = grid.window(part.bounds)
        win_transform = rasterio.windows.transform(Window(col0, row0, col1 - col0, row1 - row0), transform)
        mask = features.rasterize(
            [(part, 1)],
            out_shape=(row1 - row0, col1 - col0),
            transform=win_transform,
            all_touched=all_touched,
            fill=0,
            dtype="uint8",
        )
        rows, cols = np.nonzero(mask)
        ids.update(((rows + row0) * grid.width + cols + col0).tolist())
    return ids


def row_areas_km2(grid: Grid, rows: np.ndarray) -> dict[int, float]:
    """Geodesic area of one cell per raster row (every cell of a row has the same area)."""
    geod = pyproj.Geod(ellps="WGS84")
    out = {}
    for row in np.unique(rows).tolist():
        lat_max = float(grid.lat_max(np.array(row)))
        lat_min = max(lat_max - grid.res, -90.0)  # the last row can end a rounding error below −90: NaN area
        lons = [-180.0, -180.0 + grid.res, -180.0 + grid.res, -180.0]
        area, _ = geod.polygon_area_perimeter(lons, [lat_min, lat_min, lat_max, lat_max])
        out[row] = abs(area) / 1e6
    return out


def country_tiles(
    iso2: str, shapes: CountryShapes, grid: Grid, transform: rasterio.Affine
) -> tuple[list[int], str]:
    """CENTER cells; else TOUCHED; else the cell holding the representative point (REPPOINT)."""
    parts = shapes.parts[iso2]
    ids = _cells(parts, grid, transform, all_touched=False)
    if ids:
        return sorted(ids), "CENTER"
    ids = _cells(parts, grid, transform, all_touched=True)
    if ids:
        return sorted(ids), "TOUCHED"
    point = shapely.point_on_surface(shapes.union(iso2))
    row, col = grid.cell_of(point.x, point.y)
    return [row * grid.width + col], "REPPOINT"


def run(ctx: StateContext) -> None:
    ctx.warnings.extend(ensure_proj_data(ctx.state))
    tiles: Tiles = ctx.policy("1B/tiles.yaml")
    shapes = CountryShapes(ctx.sealed_table("ref_country_polygons"))
    with rasterio.open(ctx.sealed.path(tiles.raster)) as src:
        transform, grid = src.transform, Grid.from_transform(src.transform, src.width, src.height)
    frames = []
    for n, iso2 in enumerate(sorted(shapes.parts)):
        ids, inclusion = country_tiles(iso2, shapes, grid, transform)
        if inclusion != "CENTER":
            ctx.count(f"inclusion_{inclusion.lower()}")
        tile = np.asarray(ids, dtype=np.int64)
        row, col = tile // grid.width, tile % grid.width
        lon_min, lon_max = grid.lon_min(col), grid.lon_max(col)
        lat_min, lat_max = grid.lat_min(row), grid.lat_max(row)
        interior = shapely.contains(shapes.union(iso2), shapely.box(lon_min, lat_min, lon_max, lat_max))
        frames.append(
            pl.DataFrame(
                {
                    "country_iso": iso2,
                    "tile_id": pl.Series(tile, dtype=pl.UInt64),
                    "row": pl.Series(row, dtype=pl.UInt32),
                    "col": pl.Series(col, dtype=pl.UInt32),
                    "lon_min": lon_min,
                    "lat_min": lat_min,
                    "lon_max": lon_max,
                    "lat_max": lat_max,
                    "lon_c": (lon_min + lon_max) / 2,
                    "lat_c": (lat_min + lat_max) / 2,
                    "interior": interior,
                    "inclusion": inclusion,
                }
            )
        )
        if n % 50 == 0:
            ctx.progress(f"tile index: {n} countries")
    out = pl.concat(frames)
    areas = row_areas_km2(grid, out["row"].to_numpy())
    area = pl.col("row").replace_strict(areas, return_dtype=pl.Float64).alias("area_km2")
    out = out.with_columns(area).select(*COLUMNS)
    if out.select("country_iso", "tile_id").is_duplicated().any():
        raise EngineError(
            "E_1B_DUP_TILE", "a tile appears twice for a country", where="tile_index", state=ctx.state
        )
    ctx.publish("tile_index", out.sort(["country_iso", "tile_id"]), seed_free=True)
    ctx.facts["tiles"] = out.height
