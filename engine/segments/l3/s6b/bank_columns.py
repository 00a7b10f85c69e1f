"""Column helpers of 6B.S5: vocabulary codes to and from Enum columns, nullable columns from numpy arrays
(−1 marks a null), so the per-flow logic runs on integer arrays and only the output is categorical."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

TS = pl.Datetime("us", "UTC")
ARROW = {np.dtype(np.uint32): pa.uint32(), np.dtype(np.uint64): pa.uint64(), np.dtype(np.int64): pa.int64()}


def nullable(values: np.ndarray, valid: np.ndarray) -> pl.Series:
    """A series of `values` (u32, u64 or i64) with nulls where not `valid`, from Arrow buffers (no copy
    pass)."""
    values = np.ascontiguousarray(values)
    bits = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pl.Series(pa.Array.from_buffers(ARROW[values.dtype], values.size, [bits, pa.py_buffer(values)]))


def coded(codes: np.ndarray, categories: tuple[str, ...] | list[str]) -> pl.Series:
    """An Enum series over `categories` from integer codes (−1 → null)."""
    cats = list(categories)
    idx = nullable(np.maximum(codes, 0).astype(np.uint32), codes >= 0)
    return pl.Series(cats, dtype=pl.Enum(cats)).gather(idx)


def stamp(us: np.ndarray) -> pl.Series:
    """UTC timestamps from µs (−1 → null)."""
    return nullable(us.astype(np.int64), us >= 0).cast(TS)


def codes_of(series: pl.Series, categories: tuple[str, ...] | list[str]) -> np.ndarray:
    """Vocabulary positions of an Enum (or string) column (null → −1)."""
    if isinstance(series.dtype, pl.Enum):
        own = series.dtype.categories.to_list()
        lookup = np.array([categories.index(c) if c in categories else -1 for c in own] + [-1])
        phys = series.to_physical().fill_null(len(own)).to_numpy().astype(np.int64)
        return lookup[phys]
    mapping = {c: i for i, c in enumerate(categories)}
    return series.cast(pl.String).replace_strict(mapping, default=-1, return_dtype=pl.Int64).to_numpy()


def flag(series: pl.Series, value: str) -> np.ndarray:
    """Whether each row of a categorical column equals `value` (null → false)."""
    return codes_of(series, [value]) == 0
