"""The PROJ guard: pyproj and GDAL each end up with a proj.db they can use; every fix is reported."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.core.proj_guard import WARNING, _bundled_dir

REPO = Path(__file__).resolve().parents[2]
PROBE = (
    "from engine.core.proj_guard import ensure_proj_data\n"
    "w = ensure_proj_data('t')\n"
    "import rasterio.crs, pyproj\n"
    "assert rasterio.crs.CRS.from_epsg(4326).to_epsg() == 4326\n"
    "assert pyproj.CRS.from_epsg(4326).to_epsg() == 4326\n"
    "assert round(pyproj.Geod(ellps='WGS84').inv(0, 0, 1, 0)[2]) == 111319\n"
    "print(len(w)); print(w[0] if w else '')\n"
)


def _guarded(proj_data: str | None) -> list[str]:
    """Run the guard in a fresh process (PROJ state is per process) and return its report lines."""
    env = {k: v for k, v in os.environ.items() if k not in ("PROJ_DATA", "PROJ_LIB")}
    if proj_data is not None:
        env["PROJ_DATA"] = env["PROJ_LIB"] = proj_data
    res = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def test_broken_proj_data_is_corrected_and_reported(tmp_path: Path) -> None:
    (tmp_path / "proj.db").write_bytes(b"not a database")
    count, line = _guarded(str(tmp_path))
    assert count == "1" and line.startswith(WARNING) and str(tmp_path) in line


def test_pyproj_data_given_to_gdal_is_corrected_for_gdal() -> None:
    """pyproj's proj.db is of another PROJ version than rasterio's GDAL: GDAL must not be pointed at it."""
    count, line = _guarded(str(_bundled_dir()))
    assert count == "1" and "GDAL" in line


def test_nothing_configured_needs_no_correction() -> None:
    assert _guarded(None) == ["0", ""]


def test_unusable_everything_stops_with_a_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from engine.core import proj_guard
    from engine.core.errors import EngineError

    monkeypatch.delenv("PROJ_DATA", raising=False)
    monkeypatch.delenv("PROJ_LIB", raising=False)
    monkeypatch.setattr(proj_guard, "_bundled_dir", lambda: tmp_path)
    with pytest.raises(EngineError) as err:
        proj_guard._ensure_pyproj("test")
    assert err.value.code == "E_PROJ_DATA_MISSING"
