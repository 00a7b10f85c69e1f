"""Contracts: schema packs with cross-pack `$ref` through a local registry, column-wise table checks.

Tables are never validated row by row with jsonschema (far too slow); each column is checked as a whole
with polars: dtype, nulls, ranges, enums, patterns, finiteness, then primary-key and unique-key checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from engine.core import yaml12
from engine.core.errors import EngineError

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
BASE_URI = "https://contracts.engine.invalid/"

DTYPES: dict[str, pl.DataType] = {
    "u8": pl.UInt8(),
    "u16": pl.UInt16(),
    "u32": pl.UInt32(),
    "u64": pl.UInt64(),
    "i32": pl.Int32(),
    "i64": pl.Int64(),
    "f64": pl.Float64(),
    "bool": pl.Boolean(),
    "str": pl.String(),
    "date": pl.Date(),
}


def _load_pack(path: Path) -> dict[str, Any]:
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml12.load(text)


@cache
def registry() -> Registry:
    """Every pack under contracts/, registered by its `$id`; no retrieval, so nothing is ever fetched."""
    resources = []
    for path in sorted(CONTRACTS_DIR.rglob("*")):
        if path.suffix not in (".yaml", ".json") or path.name == "dictionary.yaml":
            continue
        doc = _load_pack(path)
        if "$id" in doc:
            resources.append((doc["$id"], Resource.from_contents(doc, default_specification=DRAFT202012)))
    return Registry().with_resources(resources)


def resolve(ref: str, base: str = BASE_URI) -> Any:
    """Resolve `ref` (absolute or relative to `base`) and inline nested `$ref`s of column specs."""
    resolved = registry().resolver(base_uri=base).lookup(ref)
    return _inline(resolved.contents, resolved.resolver)


def _inline(node: Any, resolver: Any) -> Any:
    if isinstance(node, dict):
        if "$ref" in node and len(node) == 1:
            inner = resolver.lookup(node["$ref"])
            return _inline(inner.contents, inner.resolver)
        return {k: _inline(v, resolver) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, resolver) for v in node]
    return node


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: dict[str, dict[str, Any]]
    primary_key: tuple[str, ...]
    unique: tuple[tuple[str, ...], ...]

    def polars_schema(self) -> dict[str, pl.DataType]:
        return {col: DTYPES[spec["dtype"]] for col, spec in self.columns.items()}


@cache
def table_schema(ref: str) -> TableSchema:
    spec = resolve(ref)
    return TableSchema(
        name=ref.rsplit("/", 1)[-1],
        columns=spec["columns"],
        primary_key=tuple(spec["primary_key"]),
        unique=tuple(tuple(u) for u in spec.get("unique", [])),
    )


def _fail(code: str, what: str, where: str, state: str) -> EngineError:
    return EngineError(
        code, what, where=where, fix="this is an engine defect or a tampered input", state=state
    )


def _check_column(series: pl.Series, spec: dict[str, Any]) -> str | None:
    """Return a description of the first violation in this column, or None."""
    want = DTYPES[spec["dtype"]]
    if series.dtype != want:
        return f"dtype {series.dtype} != {want}"
    nulls = series.null_count()
    if nulls and not spec.get("nullable", False):
        return f"{nulls} nulls in a non-nullable column"
    values = series.drop_nulls()
    if values.is_empty():
        return None
    if spec.get("finite") and not values.is_finite().all():
        return "non-finite values"
    checks = (
        ("minimum", lambda b: values < b, "below minimum"),
        ("maximum", lambda b: values > b, "above maximum"),
        ("exclusiveMinimum", lambda b: values <= b, "not above exclusiveMinimum"),
        ("exclusiveMaximum", lambda b: values >= b, "not below exclusiveMaximum"),
    )
    for key, bad, label in checks:
        if key in spec:
            n_bad = int(bad(spec[key]).sum())
            if n_bad:
                return f"{n_bad} values {label} {spec[key]}"
    if "enum" in spec:
        outside = values.filter(~values.is_in(spec["enum"]))
        if len(outside):
            return f"values outside enum, e.g. {outside[0]!r}"
    if "pattern" in spec:
        bad_pat = values.filter(~values.str.contains(spec["pattern"]))
        if len(bad_pat):
            return f"values not matching {spec['pattern']}, e.g. {bad_pat[0]!r}"
    return None


def validate_table(df: pl.DataFrame, ref: str, *, where: str, state: str, code: str = "E_SCHEMA") -> None:
    """Column-wise contract check of a whole table; raises `code` naming the first violation."""
    schema = table_schema(ref)
    if list(df.columns) != list(schema.columns):
        raise _fail(code, f"columns {df.columns} != contract {list(schema.columns)}", where, state)
    for col, spec in schema.columns.items():
        problem = _check_column(df[col], spec)
        if problem:
            raise _fail(code, f"column {col}: {problem}", where, state)
    for key in (schema.primary_key, *schema.unique):
        dupes = df.select(key).is_duplicated().sum()
        if dupes:
            raise _fail(code, f"{dupes} rows duplicate key {list(key)}", where, state)


@cache
def dictionary() -> dict[str, dict[str, Any]]:
    return yaml12.load((CONTRACTS_DIR / "dictionary.yaml").read_text())["datasets"]


def dataset_dir(root: Path, dataset: str, *, mf: str, seed: int | None = None) -> Path:
    entry = dictionary()[dataset]
    return root / entry["path"].format(mf=mf, seed=seed)


PART_FILE = "part-00000.parquet"


def dataset_file(root: Path, dataset: str, *, mf: str, seed: int | None = None) -> Path:
    return dataset_dir(root, dataset, mf=mf, seed=seed) / PART_FILE
