"""1B.S0: per-seed upstream sealing (1A's flag, outlet digest) and the raster/polygon gate checks."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from engine.core.errors import EngineError
from engine.core.layout import gate_dir
from engine.segments.l1.s1b.s0_gate import check_raster
from tests.conftest import tiny_plan


def test_sealed_upstream_names_the_1a_flag_and_outlets(tiny_world: Path) -> None:
    plan = tiny_plan(tiny_world)
    doc = json.loads(
        (gate_dir(tiny_world, "1B", plan["1B"].manifest_fingerprint, 42) / "sealed_upstream.json").read_text()
    )
    flag = next(tiny_world.glob("data/layer1/1A/validation/seed=42/*/_passed.flag")).read_text()
    assert doc["flags"] == {"1A": flag.split("=", 1)[1].strip()}
    assert [i["id"] for i in doc["inputs"]] == ["outlet_catalogue"]


def _raster(path: Path, west: float, res_x: float, res_y: float) -> Path:
    profile = {
        "driver": "GTiff",
        "width": 4,
        "height": 2,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": from_origin(west, 90.0, res_x, res_y),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.zeros((1, 2, 4), dtype=np.float32))
    return path


def test_raster_grid_must_start_at_minus_180_with_square_cells(tmp_path: Path) -> None:
    check_raster(_raster(tmp_path / "ok.tif", -180.0, 1.0, 1.0))
    for name, west, rx, ry in (("shifted.tif", -179.5, 1.0, 1.0), ("oblong.tif", -180.0, 1.0, 0.5)):
        with pytest.raises(EngineError) as err:
            check_raster(_raster(tmp_path / name, west, rx, ry))
        assert err.value.code == "E_1B_RASTER_GRID"
