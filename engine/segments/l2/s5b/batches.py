"""Bounded batches over large multi-part tables, cut only where the caller's unit ends (a merchant, or a
(merchant, bucket) segment), so no state holds more than one batch of a 10^8-row table (§0.6)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

READ_ROWS = 1 << 20


def part_rows(paths: list[Path]) -> int:
    """Rows of the parts, from their footers."""
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)


def row_batches(paths: list[Path], columns: list[str] | None, rows: int) -> Iterator[pl.DataFrame]:
    """Consecutive rows in batches of at most `rows`, cut wherever the count or a part ends: for states whose
    rows are independent and whose order-dependent output carries over the cut (6B.S5's events)."""
    for path in paths:
        scan = pl.scan_parquet(path)  # polars decodes a slice's row groups on every core
        if columns is not None:
            scan = scan.select(columns)
        for offset in range(0, pq.ParquetFile(path).metadata.num_rows, rows):
            yield scan.slice(offset, rows).collect()


def unit_batches(
    paths: list[Path], columns: list[str], unit: list[str], max_weight: int, weight: str | None = None
) -> Iterator[pl.DataFrame]:
    """Consecutive rows (the parts are sorted by `unit` first) in batches that end where a `unit` key
    changes and hold at most `max_weight` rows (or Σ `weight`), unless one unit alone is heavier."""
    return unit_cuts(row_batches(paths, columns, READ_ROWS), unit, max_weight, weight)


def unit_cuts(
    frames: Iterable[pl.DataFrame], unit: list[str], max_weight: int, weight: str | None = None
) -> Iterator[pl.DataFrame]:
    """unit_batches over frames the caller has read (6B.S7 checks each read against the contract first)."""
    carry: pl.DataFrame | None = None
    for frame in frames:
        buf = frame if carry is None else pl.concat([carry, frame], how="vertical_relaxed")
        while True:
            cut = _cut(buf, unit, max_weight, weight)
            if cut is None:
                break
            yield buf.slice(0, cut)
            buf = buf.slice(cut)
        carry = buf
    if carry is not None and carry.height:
        yield carry


def _cut(buf: pl.DataFrame, unit: list[str], max_weight: int, weight: str | None) -> int | None:
    """The largest unit boundary whose prefix weighs ≤ max_weight (the first boundary if one unit is
    heavier), or None while the buffer holds no complete unit beyond the limit."""
    if buf.height == 0:
        return None
    w = np.ones(buf.height, dtype=np.int64) if weight is None else buf[weight].to_numpy().astype(np.int64)
    total = np.cumsum(w)
    if total[-1] <= max_weight:
        return None  # wait for more rows (or the end)
    keys = [buf[c].to_physical().to_numpy() for c in unit]
    change = np.zeros(buf.height, dtype=bool)
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    starts = np.flatnonzero(change)  # a boundary before row i; row 0 is never one
    if starts.size == 0:
        return None
    before = total[starts - 1]
    ok = starts[before <= max_weight]
    return int(ok[-1]) if ok.size else int(starts[0])
