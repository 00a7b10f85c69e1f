"""Geometry helpers 1B shares: country shapes from the sealed polygons and the raster grid."""

from __future__ import annotations

from dataclasses import dataclass

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
        return np.maximum(-180.0 + col * self.res, -180.0)

    def lon_max(self, col: np.ndarray) -> np.ndarray:
        """From the index (not lon_min + res) and clipped, so the last column ends at exactly 180."""
        return np.minimum(-180.0 + (col + 1) * self.res, 180.0)

    def lat_max(self, row: np.ndarray) -> np.ndarray:
        return np.minimum(self.top - row * self.res, 90.0)

    def lat_min(self, row: np.ndarray) -> np.ndarray:
        return np.maximum(self.top - (row + 1) * self.res, -90.0)

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
        self._unions: dict[str, shapely.Geometry] = {}

    def union(self, iso2: str) -> shapely.Geometry:
        """The country's parts as one prepared geometry, built on first use."""
        if iso2 not in self._unions:
            geom = shapely.union_all(self.parts[iso2])
            shapely.prepare(geom)
            self._unions[iso2] = geom
        return self._unions[iso2]
