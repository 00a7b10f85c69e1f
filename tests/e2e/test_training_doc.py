"""docs/training.md's two recipes run on the tiny world and cut a point-in-time training set: the label is the
bank's as of the cut-off, never more than the bank's final label, and both recipes agree."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.e2e

DOC = Path(__file__).resolve().parents[2] / "docs" / "training.md"


def _blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def _run(block: str, root: Path) -> dict:
    scope: dict = {}
    exec(block.replace('ROOT = "world"', f'ROOT = "{root}"'), scope)  # the doc's own code, on this world
    return scope


def test_training_recipes_cut_the_same_point_in_time_set(tiny_world: Path) -> None:
    duck_block, polars_block = _blocks()
    duck = _run(duck_block, tiny_world)["train"]
    pol = _run(polars_block, tiny_world)["train"]
    assert duck.height == pol.height > 0
    joined = duck.select("flow_id", "label").join(
        pol.select("flow_id", pl.col("label").alias("label_pl")), on="flow_id"
    )
    assert joined.height == duck.height
    assert (joined["label"] == joined["label_pl"]).all()

    tx = pl.scan_parquet(f"{tiny_world}/data/layer3/6B/transactions/**/*.parquet")
    final = (
        tx.filter(pl.col("scenario_id") == "baseline")
        .select("flow_id", "is_fraud_bank", "ts_utc", "bank_label_ts_utc")
        .collect()
    )
    both = duck.select("flow_id", "label", "ts_utc").join(final, on="flow_id", suffix="_final")
    # the cut-off label never exceeds the final bank label, and only flows old enough are examples
    assert not (both["label"] & ~both["is_fraud_bank"]).any()
    scope = _run(polars_block, tiny_world)
    cutoff = scope["cutoff"]
    assert both["ts_utc"].max() <= cutoff - scope["maturity"]
    late = final.filter(pl.col("is_fraud_bank") & (pl.col("bank_label_ts_utc") > cutoff))
    assert late.join(duck.filter(pl.col("label")), on="flow_id").height == 0
