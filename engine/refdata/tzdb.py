"""`ref_tzdb`: which IANA tz release the engine's civil time uses (one row).

The release is read from the header of `tzdata.zi` in the pinned tzdata package (the file zic compiled the
package from) and checked against the package's own `IANA_VERSION`; `n_zones` counts the names (zones and
links) in the package's `zones` list. 2A seals this row and forces zoneinfo onto the package
(`engine.core.tzdb.force_tzdata`), so system tz files never leak in.
"""

from __future__ import annotations

import importlib.metadata
from importlib.resources import files
from pathlib import Path

import polars as pl
import tzdata

from engine.core.tzdb import tzdata_version
from engine.refdata.provenance import write_artefact

NAME = "ref_tzdb"
SCHEMA = pl.Schema({"tzdata_version": pl.String, "package_version": pl.String, "n_zones": pl.UInt32})


def tzdb_table() -> pl.DataFrame:
    version = tzdata_version()
    if version != tzdata.IANA_VERSION:
        raise ValueError(f"tzdata.zi says {version}, the package says IANA_VERSION {tzdata.IANA_VERSION}")
    names = files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    return pl.DataFrame(
        [(version, importlib.metadata.version("tzdata"), len(names))], schema=SCHEMA, orient="row"
    )


def build(out_dir: Path) -> None:
    write_artefact(
        NAME,
        tzdb_table(),
        out_dir,
        repairs=[],
        notes=[
            "tzdata_version: IANA release from the '# version' header of tzdata.zi in the tzdata package",
            "package_version: the tzdata distribution version (PEP 440 form of the same release)",
            "n_zones: names (zones and links) in the package's `zones` list",
        ],
    )
