"""1B.S0 — verify 1A's flag per seed; seal raster, polygons, cities and 1B's policies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rasterio
import shapely

from engine.core.errors import EngineError
from engine.core.gates import read_input_table
from engine.core.policy import load_policy_file
from engine.core.proj_guard import ensure_proj_data
from engine.core.sealing import check_inputs, seal_upstream, write_gate

STATE = "1B.S0"


def check_raster(path: Path) -> None:
    """EPSG:4326, square north-up cells, grid starting at lon −180 (cells never straddle ±180)."""
    with rasterio.open(path) as src:
        t = src.transform
        ok = (
            src.crs is not None
            and src.crs.to_epsg() == 4326
            and abs(t.a + t.e) < 1e-12
            and t.b == 0
            and t.d == 0
            and abs(t.c + 180.0) < 1e-9
        )
    if not ok:
        raise EngineError(
            "E_1B_RASTER_GRID",
            "population raster is not an EPSG:4326 square-cell grid starting at lon −180",
            where=str(path),
            fix="rebuild the raster reference",
            state=STATE,
        )


def check_polygons(path: Path) -> None:
    table = read_input_table(path, state=STATE)
    geoms = shapely.from_wkb(table["geometry"].to_numpy())
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        raise EngineError(
            "E_GEOMETRY_INVALID",
            f"{int(bad.sum())} invalid polygon parts, e.g. {table['iso2'][int(bad.argmax())]}",
            where=str(path),
            fix="rebuild ref_country_polygons (repairs happen at build time)",
            state=STATE,
        )


def run(root: Path, spec: dict[str, Any]) -> None:
    ensure_proj_data(STATE)
    inputs, paths = check_inputs(root, spec, STATE)
    tiles = load_policy_file("1B", "tiles", paths["1B/tiles.yaml"], state=STATE)
    check_raster(paths[tiles.raster])
    check_polygons(paths["ref_country_polygons"])
    write_gate(
        root, spec, inputs, ["fingerprint", "policies", "references", "raster_grid", "polygons"], STATE
    )
    seal_upstream(root, spec, spec["seeds"], {"1A": ["outlet_catalogue"]}, STATE)
