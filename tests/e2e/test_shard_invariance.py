"""The shard count names partitions, never values (layer2_3 §0.3): 5B's and 6B's outputs built with
shards = 1, 2 and 8 hold the same rows, value for value, once each run's shards are put together.

shards = 1 is the session's tiny world. For 2 and 8 the world is copied without its layer-2 partitions and
reports (5A.S4 is sharded too, and a bundle is per (seed, mf), so 5A and 5B are rebuilt for the new shard
count, then 6A, which reads 5A's flag, and 6B) and `seg6B` runs there with `shards=N`; the layer-1 world is
reused as it is. shards = 8 builds the baseline scenario only (`scenarios=[baseline]`): scenarios are
independent partitions, and shards = 2 covers both."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_snakemake

pytestmark = pytest.mark.e2e

TABLES = {
    "arrival_events": ["arrival_id"],
    "transactions": ["flow_id"],
    "events": ["flow_id", "event_seq"],
    "s5_case_triggers": ["flow_id", "trigger_type"],
    "card_reissues": ["instrument_id"],  # per scenario: every shard's detections resolved together
    "bucket_counts": ["merchant_id", "bucket_index", "legal_country_iso", "tzid", "channel_group"],
    "cell_totals": ["merchant_id", "legal_country_iso", "tzid", "channel_group"],
}


def _union(root: Path, name: str, scenario: str) -> pl.DataFrame:
    """Every shard's rows of one scenario, without the shard column, in key order."""
    where = "layer2/5B" if name in ("arrival_events", "bucket_counts", "cell_totals") else "layer3/6B"
    paths = sorted(root.glob(f"data/{where}/{name}/seed=42/*/scenario_id={scenario}/**/part-*.parquet"))
    assert paths
    df = pl.concat([pl.read_parquet(p) for p in paths]).drop("shard", strict=False)
    return df.with_columns(pl.col(pl.Categorical, pl.Enum).cast(pl.String)).sort(TABLES[name])


@pytest.mark.parametrize("shards", [2, 8])
def test_rows_do_not_depend_on_the_shard_count(tiny_world: Path, tmp_path: Path, shards: int) -> None:
    root = tmp_path / "world"
    shutil.copytree(tiny_world, root, symlinks=False, ignore=shutil.ignore_patterns(".snakemake"))
    for sub in ("data/layer2", "data/layer3", "reports/5A", "reports/5B", "reports/6A", "reports/6B"):
        shutil.rmtree(root / sub)
    scenarios = ["baseline", "holiday_peak"] if shards == 2 else ["baseline"]
    res = run_snakemake(root, f"shards={shards}", f"scenarios=[{','.join(scenarios)}]", target="seg6B")
    assert res.returncode == 0, res.stderr[-4000:]
    built = {
        p.name for p in root.glob("data/layer2/5B/arrival_events/seed=42/*/scenario_id=baseline/shard=*")
    }
    assert built == {f"shard={i}" for i in range(shards)}
    for scenario in scenarios:
        for name in TABLES:
            one, many = _union(tiny_world, name, scenario), _union(root, name, scenario)
            assert one.height > 0
            assert one.equals(many), f"{name}/{scenario} differs between shards=1 and shards={shards}"
