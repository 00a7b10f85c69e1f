"""1B.S1: which cells belong to a country — centre rule, then touched, then the representative point."""

import numpy as np
import polars as pl
import pytest
import shapely
from rasterio.transform import from_origin

from engine.segments.l1.s1b.geo import CountryShapes, Grid
from engine.segments.l1.s1b.s1_tile_index import country_tiles, row_areas_km2

RES = 1.0
TRANSFORM = from_origin(-180.0, 90.0, RES, RES)
GRID = Grid.from_transform(TRANSFORM, 360, 180)


def shapes(**parts: shapely.Geometry) -> CountryShapes:
    return CountryShapes(
        pl.DataFrame({"iso2": list(parts), "geometry": [shapely.to_wkb(g) for g in parts.values()]})
    )


def test_center_rule_selects_exact_cells() -> None:
    s = shapes(AA=shapely.box(10.0, 40.0, 12.0, 41.0))
    ids, how = country_tiles("AA", s, GRID, TRANSFORM)
    assert how == "CENTER"
    # row of lat 40..41 is 49; cols of lon 10..12 are 190, 191
    assert ids == [49 * 360 + 190, 49 * 360 + 191]


def test_small_country_falls_back_to_touched_then_reppoint() -> None:
    tiny = shapes(BB=shapely.box(10.1, 40.1, 10.2, 40.2))  # covers no cell centre
    ids, how = country_tiles("BB", tiny, GRID, TRANSFORM)
    assert how == "TOUCHED" and ids == [49 * 360 + 190]


def test_cell_areas_shrink_towards_the_poles() -> None:
    areas = row_areas_km2(GRID, np.array([0, 89, 90, 179]))
    assert areas[89] == areas[90]  # symmetric about the equator
    assert areas[0] < 200 < 12_000 < areas[89] < 12_400


@pytest.mark.parametrize("res", [0.25, 0.1, 0.05])
def test_every_row_of_the_preset_grids_has_a_finite_area_and_the_rows_tile_the_globe(res: float) -> None:
    """The preset grids' polar rows included: 90 − 3600·0.05 rounds below −90, which once gave a NaN area."""
    height = round(180 / res)
    grid = Grid.from_transform(from_origin(-180.0, 90.0, res, res), round(360 / res), height)
    areas = np.array(list(row_areas_km2(grid, np.arange(height)).values()))
    assert areas.size == height and np.isfinite(areas).all() and (areas > 0).all()
    earth_km2 = 510_065_622  # WGS84 ellipsoid surface
    assert abs(areas.sum() * grid.width - earth_km2) / earth_km2 < 1e-9
