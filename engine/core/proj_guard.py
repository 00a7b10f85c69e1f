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


def ensure_proj_data(state: str) -> list[str]:
    """Check (and if needed correct) PROJ's data directory; returns warnings to put in the run report."""
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
