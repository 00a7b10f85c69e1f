"""Geometry helpers 1B shares: country shapes from the sealed polygons, the raster grid, cell boxes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl
import shapely
from rasterio.transform import Affine


@dataclass(frozen=True)
class Grid:
    """A north-up EPSG:4326 grid starting at lon −180 with square cells of `res` degrees."""

    res: float
    width: int
    height: int
    top: float

    @classmethod
    def from_transform(cls, transform: Affine, width: int, height: int) -> Grid:
        return cls(float(transform.a), int(width), int(height), float(transform.f))

    def lon_min(self, col: np.ndarray) -> np.ndarray:
        return -180.0 + col * self.res

    def lat_max(self, row: np.ndarray) -> np.ndarray:
        return self.top - row * self.res

    def window(self, bounds: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
        """(row0, col0, row1, col1), half-open, of the cells touching the bounds."""
        minx, miny, maxx, maxy = bounds
        col0 = max(0, int(np.floor((minx + 180.0) / self.res)))
        col1 = min(self.width, int(np.ceil((maxx + 180.0) / self.res)))
        row0 = max(0, int(np.floor((self.top - maxy) / self.res)))
        row1 = min(self.height, int(np.ceil((self.top - miny) / self.res)))
        return row0, col0, max(row1, row0 + 1), max(col1, col0 + 1)

    def cell_of(self, lon: float, lat: float) -> tuple[int, int]:
        col = min(self.width - 1, max(0, int(np.floor((lon + 180.0) / self.res))))
        row = min(self.height - 1, max(0, int(np.floor((self.top - lat) / self.res))))
        return row, col


class CountryShapes:
    """Polygon parts per country (GeoParquet rows iso2, part, geometry WKB), unions prepared lazily."""

    def __init__(self, table: pl.DataFrame) -> None:
        geoms = shapely.from_wkb(table["geometry"].to_numpy())
        self.parts: dict[str, list[shapely.Geometry]] = {}
        for iso2, geom in zip(table["iso2"].to_list(), geoms, strict=True):
            self.parts.setdefault(iso2, []).append(geom)

    @cached_property
    def _unions(self) -> dict[str, shapely.Geometry]:
        return {}

    def union(self, iso2: str) -> shapely.Geometry:
        cache = self._unions
        if iso2 not in cache:
            geom = shapely.union_all(self.parts[iso2])
            shapely.prepare(geom)
            cache[iso2] = geom
        return cache[iso2]


def cell_boxes(lon_min: np.ndarray, lat_min: np.ndarray, res: float) -> np.ndarray:
    return shapely.box(lon_min, lat_min, lon_min + res, lat_min + res)
