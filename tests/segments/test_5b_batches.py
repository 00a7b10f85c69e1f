"""Bounded batches over sorted parts (engine/segments/l2/s5b/batches.py): never split a unit, respect the
weight limit unless one unit alone exceeds it, and lose or repeat no row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import engine.segments.l2.s5b.batches as batches
from engine.segments.l2.s5b.batches import unit_batches


@pytest.mark.parametrize("max_weight", [1, 7, 50, 10_000])
def test_batches_end_on_units_and_conserve_rows(tmp_path: Path, max_weight: int, monkeypatch) -> None:
    monkeypatch.setattr(batches, "READ_ROWS", 13)  # many small reads, so units straddle reads and parts
    rng = np.random.default_rng(2)
    m = np.sort(rng.integers(1, 30, 400)).astype(np.uint64)
    b = np.concatenate([np.sort(rng.integers(0, 5, (m == x).sum())) for x in np.unique(m)]).astype(np.uint32)
    df = pl.DataFrame({"merchant_id": m, "bucket_index": b, "count": rng.integers(1, 9, 400)})
    paths = []
    for i, (lo, hi) in enumerate([(0, 150), (150, 151), (151, 400)]):
        paths.append(tmp_path / f"part-{i:05d}.parquet")
        df.slice(lo, hi - lo).write_parquet(paths[-1])
    out = list(unit_batches(paths, df.columns, ["merchant_id", "bucket_index"], max_weight, "count"))
    assert pl.concat(out).equals(df)
    seen = set()
    for batch in out:
        units = set(batch.select("merchant_id", "bucket_index").unique().iter_rows())
        assert not units & seen  # a unit never spans two batches
        seen |= units
        assert batch["count"].sum() <= max_weight or len(units) == 1
