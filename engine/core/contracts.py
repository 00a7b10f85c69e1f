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
    "i16": pl.Int16(),
    "i32": pl.Int32(),
    "i64": pl.Int64(),
    "f32": pl.Float32(),
    "f64": pl.Float64(),
    "bool": pl.Boolean(),
    "str": pl.String(),
    "date": pl.Date(),
    "ts": pl.Datetime("us", "UTC"),  # UTC microseconds
    "lts": pl.Datetime("us"),  # local wall-clock microseconds, no zone
    "cat": pl.Categorical(),  # dictionary-encoded string; its closed vocabulary is the column's enum
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


def _categorical(series: pl.Series) -> bool:
    return isinstance(series.dtype, pl.Categorical | pl.Enum)


def _check_column(series: pl.Series, spec: dict[str, Any]) -> str | None:
    """Return a description of the first violation in this column, or None."""
    want = DTYPES[spec["dtype"]]
    if spec["dtype"] == "cat":  # Categorical, or an Enum (a categorical with a vocabulary fixed in advance)
        if not _categorical(series):
            return f"dtype {series.dtype} is not categorical"
    elif series.dtype != want:
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
        distinct = values.unique().cast(pl.String) if _categorical(values) else values
        outside = distinct.filter(~distinct.is_in(spec["enum"]))
        if len(outside):
            return f"values outside enum, e.g. {outside[0]!r}"
    if "pattern" in spec:
        texts = values.unique().cast(pl.String) if _categorical(values) else values
        bad_pat = texts.filter(~texts.str.contains(spec["pattern"]))
        if len(bad_pat):
            return f"values not matching {spec['pattern']}, e.g. {bad_pat[0]!r}"
    return None


def validate_table(
    df: pl.DataFrame, ref: str, *, where: str, state: str, code: str = "E_SCHEMA", keys: bool = True
) -> None:
    """Column-wise contract check of a whole table; raises `code` naming the first violation.

    `keys=False` skips the primary- and unique-key checks: a streamed batch is only part of its table, so
    its keys are checked by the segment's validation state over the whole table."""
    schema = table_schema(ref)
    validate_columns(df, ref, list(schema.columns), where=where, state=state, code=code)
    for key in (schema.primary_key, *schema.unique) if keys else ():
        dupes = df.select(key).is_duplicated().sum()
        if dupes:
            raise _fail(code, f"{dupes} rows duplicate key {list(key)}", where, state)


def validate_columns(
    df: pl.DataFrame, ref: str, columns: list[str], *, where: str, state: str, code: str = "E_SCHEMA"
) -> None:
    """Check that `df` holds exactly the contract's `columns` (in order), each column as a whole: a
    streamed table checks its constant identity columns once and each batch's data columns."""
    schema = table_schema(ref)
    if list(df.columns) != columns:
        raise _fail(code, f"columns {df.columns} != contract {columns}", where, state)
    for col in columns:
        problem = _check_column(df[col], schema.columns[col])
        if problem:
            raise _fail(code, f"column {col}: {problem}", where, state)


def validate_parquet_columns(path: Path, ref: str, *, state: str, code: str = "E_SCHEMA") -> None:
    """validate_columns on a Parquet file read one column at a time, so a validation state checking a
    20 M-row part of 92 columns holds one column, not the table; the same checks, the same messages."""
    import pyarrow.parquet as pq

    columns = list(table_schema(ref).columns)
    names = pq.read_schema(path).names
    if names != columns:
        raise _fail(code, f"columns {names} != contract {columns}", str(path), state)
    for col in columns:
        validate_columns(
            pl.read_parquet(path, columns=[col]), ref, [col], where=str(path), state=state, code=code
        )


@cache
def dictionary() -> dict[str, dict[str, Any]]:
    return yaml12.load((CONTRACTS_DIR / "dictionary.yaml").read_text())["datasets"]


def dataset_dir(
    root: Path,
    dataset: str,
    *,
    mf: str,
    seed: int | str | None = None,
    scenario: str | None = None,
    shard: int | str | None = None,
) -> Path:
    """The partition folder; a layer-2/3 path may carry `{scenario}` and `{shard}` (README §5 order)."""
    entry = dictionary()[dataset]
    return root / entry["path"].format(mf=mf, seed=seed, scenario=scenario, shard=shard)


def path_tokens(dataset: str) -> set[str]:
    """The identity tokens of a dataset's path: a subset of {seed, scenario, shard} (mf is always there)."""
    path = dictionary()[dataset]["path"]
    return {t for t in ("seed", "scenario", "shard") if "{" + t + "}" in path}


PART_FILE = "part-00000.parquet"
PART_GLOB = "part-*.parquet"


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def dataset_file(root: Path, dataset: str, **partition: Any) -> Path:
    """The first (often only) part file of a partition (`partition`: dataset_dir's mf, seed, scenario,
    shard); a streamed partition may hold part-00001… after it."""
    return dataset_dir(root, dataset, **partition) / PART_FILE
