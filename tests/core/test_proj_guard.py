"""The PROJ guard: a broken PROJ data directory is corrected (and reported); a good one is left alone."""

import os
from pathlib import Path

import pyproj
import pytest

from engine.core.proj_guard import WARNING, _bundled_dir, ensure_proj_data


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROJ_DATA", raising=False)
    monkeypatch.delenv("PROJ_LIB", raising=False)


def test_broken_proj_data_is_corrected_and_reported(clean_env: None, tmp_path: Path) -> None:
    broken = tmp_path / "proj"
    broken.mkdir()
    (broken / "proj.db").write_bytes(b"not a database")
    os.environ["PROJ_DATA"] = str(broken)
    warnings = ensure_proj_data("test")
    assert len(warnings) == 1 and warnings[0].startswith(WARNING) and str(broken) in warnings[0]
    assert "PROJ_DATA" not in os.environ  # GDAL falls back to its own wheel's data
    geod = pyproj.Geod(ellps="WGS84")  # CRS work now succeeds
    assert round(geod.inv(0, 0, 1, 0)[2]) == 111319
    assert pyproj.CRS.from_epsg(4326).to_epsg() == 4326


def test_usable_configured_dir_is_kept(clean_env: None) -> None:
    os.environ["PROJ_DATA"] = str(_bundled_dir())
    assert ensure_proj_data("test") == []


def test_nothing_configured_uses_bundled_silently(clean_env: None) -> None:
    assert ensure_proj_data("test") == []
    assert "PROJ_DATA" not in os.environ
    assert pyproj.datadir.get_data_dir() == str(_bundled_dir())


def test_rasterio_crs_work_after_correcting_a_broken_dir(tmp_path: Path) -> None:
    """In a fresh process with a broken PROJ_DATA, pyproj and rasterio (GDAL) both resolve EPSG:4326."""
    import subprocess
    import sys

    code = (
        "from engine.core.proj_guard import ensure_proj_data\n"
        "w = ensure_proj_data('t')\n"
        "import rasterio.crs, pyproj\n"
        "assert rasterio.crs.CRS.from_epsg(4326).to_epsg() == 4326\n"
        "assert pyproj.CRS.from_epsg(4326).to_epsg() == 4326\n"
        "print(len(w))\n"
    )
    env = {**os.environ, "PROJ_DATA": str(tmp_path), "PROJ_LIB": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=Path(__file__).parents[2]
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "1"
