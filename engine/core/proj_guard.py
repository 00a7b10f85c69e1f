"""The PROJ guard: before any CRS or raster work, make sure PROJ finds a `proj.db` it can use.

A stale PROJ_DATA/PROJ_LIB (another install's data directory, or a broken one) makes pyproj fail or,
worse, use a proj.db of the wrong version. The guard points pyproj at its bundled data directory and removes
the bad variables, so GDAL (rasterio) falls back to the data its own wheel ships; it reports what it
corrected, and stops if even pyproj's bundled data is unusable. It deliberately does not export pyproj's
directory to GDAL: rasterio's PROJ is a different build, and a proj.db from another PROJ version breaks it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyproj
import pyproj.datadir

from engine.core.errors import EngineError

WARNING = "W_PROJ_DATADIR_CORRECTED"


def _bundled_dir() -> Path:
    return Path(pyproj.__file__).resolve().parent / "proj_dir" / "share" / "proj"


def _usable(data_dir: Path) -> bool:
    """proj.db exists, opens, and has the layout metadata a PROJ database carries."""
    db = data_dir / "proj.db"
    if not db.is_file():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            row = con.execute(
                "SELECT value FROM metadata WHERE key = 'DATABASE.LAYOUT.VERSION.MAJOR'"
            ).fetchone()
    except sqlite3.Error:
        return False
    return row is not None


def _candidates() -> list[Path]:
    named = [os.environ.get("PROJ_DATA"), os.environ.get("PROJ_LIB")]
    return [Path(p) for p in named if p]


_GDAL_PROBE = (
    "import rasterio, rasterio.crs\n"
    "with rasterio.Env():\n"
    "    assert rasterio.crs.CRS.from_epsg(4326).to_epsg() == 4326\n"
)


def _gdal_accepts_env() -> bool:
    """Does GDAL's PROJ (the one rasterio ships) work with the configured PROJ_DATA/PROJ_LIB? Probed in a
    child process, because a failed lookup poisons this process's PROJ context for good."""
    res = subprocess.run([sys.executable, "-c", _GDAL_PROBE], capture_output=True, timeout=120, check=False)
    return res.returncode == 0


def _ensure_gdal(state: str) -> list[str]:
    """GDAL needs a proj.db of its own PROJ version (pyproj's may be older or newer): when the environment
    points it elsewhere, drop the variables and point it at the data its rasterio wheel ships."""
    configured = _candidates()
    if not configured or _gdal_accepts_env():
        return []
    from rasterio._env import set_proj_data_search_path
    from rasterio.env import PROJDataFinder

    for var in ("PROJ_DATA", "PROJ_LIB"):
        os.environ.pop(var, None)
    wheel = PROJDataFinder().search_wheel()
    if not wheel:
        raise EngineError(
            "E_PROJ_DATA_MISSING",
            "GDAL (rasterio) finds no usable proj.db",
            where=", ".join(map(str, configured)),
            fix="reinstall rasterio, or point PROJ_DATA at the PROJ data of GDAL's PROJ version",
            state=state,
        )
    set_proj_data_search_path(wheel)
    return [f"{WARNING}: GDAL cannot use {', '.join(map(str, configured))}; using rasterio's {wheel}"]


def ensure_proj_data(state: str) -> list[str]:
    """Check (and if needed correct) PROJ's data for pyproj and for GDAL; returns run-report warnings."""
    gdal = _ensure_gdal(state)  # first: it reads the variables as the user set them
    return _ensure_pyproj(state) + gdal


def _ensure_pyproj(state: str) -> list[str]:
    configured = _candidates()
    if configured and all(_usable(p) for p in configured):
        pyproj.datadir.set_data_dir(str(configured[0]))
        return []
    bundled = _bundled_dir()
    if not _usable(bundled):
        raise EngineError(
            "E_PROJ_DATA_MISSING",
            "no usable proj.db, neither configured nor bundled with pyproj",
            where=", ".join(str(p) for p in [*configured, bundled]),
            fix="reinstall pyproj, or point PROJ_DATA at a valid PROJ data directory",
            state=state,
        )
    pyproj.datadir.set_data_dir(str(bundled))
    for var in ("PROJ_DATA", "PROJ_LIB"):
        os.environ.pop(var, None)
    pyproj.CRS.from_epsg(4326)  # fails loudly here, not later inside a state, if the switch did not take
    if not configured:
        return []
    return [f"{WARNING}: PROJ data dir {', '.join(map(str, configured))} unusable; using {bundled}"]
