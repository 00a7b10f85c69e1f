"""Contracts: schema packs with cross-pack `$ref` through a local registry, column-wise table checks.

Tables are never validated row by row with jsonschema (far too slow); each column is checked as a whole
with polars, every column's measures in one query: dtype, nulls, ranges, enums, patterns, finiteness, then
primary-key and unique-key checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from engine.core import yaml12
from engine.core.errors import EngineError
from engine.core.row_order import RowOrder

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
    sort_key: tuple[str, ...]  # the order rows keep in each partition (row_order.py); () promises none

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
        sort_key=tuple(spec.get("sort_key", [])),
    )


def _fail(code: str, what: str, where: str, state: str) -> EngineError:
    return EngineError(
        code, what, where=where, fix="this is an engine defect or a tampered input", state=state
    )


def _categorical(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.Categorical | pl.Enum)


def _dtype_problem(dtype: pl.DataType, spec: dict[str, Any]) -> str | None:
    if spec["dtype"] == "cat":  # Categorical, or an Enum (a categorical with a vocabulary fixed in advance)
        return None if _categorical(dtype) else f"dtype {dtype} is not categorical"
    want = DTYPES[spec["dtype"]]
    return None if dtype == want else f"dtype {dtype} != {want}"


BOUNDS = (
    ("minimum", lambda c, b: c < b, "below minimum"),
    ("maximum", lambda c, b: c > b, "above maximum"),
    ("exclusiveMinimum", lambda c, b: c <= b, "not above exclusiveMinimum"),
    ("exclusiveMaximum", lambda c, b: c >= b, "not below exclusiveMaximum"),
)


def _measures(col: str, spec: dict[str, Any], categorical: bool) -> dict[str, pl.Expr]:
    """One-row aggregates of a column (nulls never count as a violation of a bound, an enum or a pattern)."""
    c = pl.col(col)
    out = {"nulls": c.null_count()}
    if spec.get("finite"):
        out["non-finite"] = (~c.is_finite()).sum()
    for key, bad, _ in BOUNDS:
        if key in spec:
            out[key] = bad(c, spec[key]).sum()
    distinct = c.drop_nulls().unique(maintain_order=True)  # one order for the values and their mask
    texts = distinct.cast(pl.String) if categorical else distinct
    if "enum" in spec:
        out["enum"] = texts.filter(~texts.is_in(spec["enum"])).implode()
    if "pattern" in spec:
        out["pattern"] = texts.filter(~texts.str.contains(spec["pattern"])).implode()
    return out


def _problem(spec: dict[str, Any], got: dict[str, Any]) -> str | None:
    """The first violation of a column, in the order dtype, nulls, finiteness, bounds, enum, pattern."""
    if got["nulls"] and not spec.get("nullable", False):
        return f"{got['nulls']} nulls in a non-nullable column"
    if got.get("non-finite"):
        return "non-finite values"
    for key, _, label in BOUNDS:
        if got.get(key):
            return f"{got[key]} values {label} {spec[key]}"
    if got.get("enum"):
        return f"values outside enum, e.g. {got['enum'][0]!r}"
    if got.get("pattern"):
        return f"values not matching {spec['pattern']}, e.g. {got['pattern'][0]!r}"
    return None


def validate_table(
    df: pl.DataFrame, ref: str, *, where: str, state: str, code: str = "E_SCHEMA", keys: bool = True
) -> None:
    """Column-wise contract check of a whole table; raises `code` naming the first violation.

    `keys=False` skips the primary- and unique-key checks and the row order: a streamed batch is only part
    of its table, so its keys are checked by the segment's validation state over the whole table, and its
    order by a RowOrder that follows the batches."""
    schema = table_schema(ref)
    validate_columns(df, ref, list(schema.columns), where=where, state=state, code=code)
    for key in (schema.primary_key, *schema.unique) if keys else ():
        dupes = duplicated_rows(df, key)
        if dupes:
            raise _fail(code, f"{dupes} rows duplicate key {list(key)}", where, state)
    if keys:
        RowOrder(schema).check(df, where=where, state=state, code=code)


def duplicated_rows(df: pl.DataFrame, key: tuple[str, ...] | list[str]) -> int:
    """How many rows share their key with another row (what `is_duplicated` counts). Integer keys in
    ascending order, as the engine writes its ids and links, are checked against their neighbours in one
    pass instead of hashing every row; any other key falls back to the hash."""
    columns = [df[name] for name in key]
    if all(c.dtype.is_integer() and c.null_count() == 0 for c in columns):
        ascending = np.ones(max(df.height - 1, 0), dtype=bool)
        tie = ascending.copy()
        for values in reversed([c.to_numpy() for c in columns]):  # lexicographic, last column first
            after, before = values[1:], values[:-1]
            ascending = (after > before) | ((after == before) & ascending)
            tie &= after == before
        if ascending.all():
            return int(np.count_nonzero(np.concatenate(([False], tie)) | np.concatenate((tie, [False]))))
    return int(df.select(key).is_duplicated().sum())


def validate_columns(
    df: pl.DataFrame, ref: str, columns: list[str], *, where: str, state: str, code: str = "E_SCHEMA"
) -> None:
    """Check that `df` holds exactly the contract's `columns` (in order), each column as a whole: a
    streamed table checks its constant identity columns once and each batch's data columns."""
    schema = table_schema(ref)
    if list(df.columns) != columns:
        raise _fail(code, f"columns {df.columns} != contract {columns}", where, state)
    dtypes = df.schema  # built anew on every access (≈ 0.3 ms for 92 columns), so taken once
    typed: list[str] = []  # the columns before the first dtype violation: only those are measured
    for col in columns:
        wrong_type = _dtype_problem(dtypes[col], schema.columns[col])
        if wrong_type:
            break
        typed.append(col)
    exprs = [
        expr.alias(f"{i}:{name}")
        for i, col in enumerate(typed)
        for name, expr in _measures(col, schema.columns[col], _categorical(dtypes[col])).items()
    ]
    by_column: dict[int, dict[str, Any]] = {}
    for key, value in (df.select(exprs).row(0, named=True) if exprs else {}).items():
        i, name = key.split(":", 1)
        by_column.setdefault(int(i), {})[name] = value
    for i, col in enumerate(typed):
        problem = _problem(schema.columns[col], by_column[i])
        if problem:
            raise _fail(code, f"column {col}: {problem}", where, state)
    if len(typed) < len(columns):
        raise _fail(code, f"column {columns[len(typed)]}: {wrong_type}", where, state)


def policy_schema_path(seg: str, name: str) -> Path:
    """The JSON Schema a policy pack is checked against (written from its pydantic model)."""
    return CONTRACTS_DIR / "policies" / seg / f"{name}.schema.json"


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
