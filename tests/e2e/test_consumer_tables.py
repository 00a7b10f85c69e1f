"""The consumer tables (design layer2_3.md §5) read the same with polars, DuckDB and pandas, as
docs/outputs.md shows, and hold together: one row per flow, every flow's messages in `events`, every
campaign flow's campaign in `campaigns`, every case member in `transactions`."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pytest

pytestmark = pytest.mark.e2e


def _glob(root: Path, name: str) -> str:
    return f"{root}/data/layer3/6B/{name}/**/*.parquet"


def test_three_readers_agree(tiny_world: Path) -> None:
    tx = pl.scan_parquet(_glob(tiny_world, "transactions"))
    want = tx.select(
        pl.len().alias("rows"),
        pl.col("amount_minor").sum().alias("amount"),
        pl.col("is_fraud_truth").sum().alias("fraud"),
        pl.col("flow_id").n_unique().alias("flows"),
    ).collect()
    duck = duckdb.sql(
        f"SELECT count(*), sum(amount_minor), sum(is_fraud_truth::INT), count(DISTINCT flow_id) "
        f"FROM read_parquet('{_glob(tiny_world, 'transactions')}', hive_partitioning = true)"
    ).fetchall()[0]
    folder = next((tiny_world / "data/layer3/6B/transactions").glob("seed=42/*"))
    frame = pd.read_parquet(folder, partitioning=None)
    assert want["rows"][0] > 0
    assert duck == (want["rows"][0], want["amount"][0], want["fraud"][0], want["flows"][0])
    assert len(frame) == want["rows"][0]
    assert int(frame["amount_minor"].sum()) == want["amount"][0]
    assert int(frame["is_fraud_truth"].sum()) == want["fraud"][0]
    # flow ids are unique within a scenario (the primary key is (scenario_id, flow_id))
    assert frame.groupby("scenario_id")["flow_id"].nunique().sum() == len(frame)


def test_events_campaigns_and_cases_join_the_transactions(tiny_world: Path) -> None:
    con = duckdb.connect()
    tx = f"read_parquet('{_glob(tiny_world, 'transactions')}', hive_partitioning = true)"
    ev = f"read_parquet('{_glob(tiny_world, 'events')}', hive_partitioning = true)"
    camp = f"read_parquet('{_glob(tiny_world, 'campaigns')}', hive_partitioning = true)"
    timeline = f"read_parquet('{_glob(tiny_world, 'case_timeline')}', hive_partitioning = true)"
    # every flow has exactly one AUTH_REQUEST and one AUTH_RESPONSE
    bad = con.sql(
        f"""SELECT count(*) FROM {tx} t LEFT JOIN (
              SELECT scenario_id, flow_id,
                     count(*) FILTER (WHERE event_type = 'AUTH_REQUEST') AS req,
                     count(*) FILTER (WHERE event_type = 'AUTH_RESPONSE') AS resp
              FROM {ev} GROUP BY ALL) e USING (scenario_id, flow_id)
            WHERE coalesce(e.req, 0) != 1 OR coalesce(e.resp, 0) != 1"""
    ).fetchall()[0]
    assert bad == (0,)
    orphans = con.sql(
        f"SELECT count(*) FROM {tx} t ANTI JOIN {camp} c USING (scenario_id, campaign_id) "
        "WHERE t.campaign_id IS NOT NULL"
    ).fetchall()[0]
    assert orphans == (0,)
    members = con.sql(
        f"SELECT count(*) FROM {timeline} c ANTI JOIN {tx} t USING (scenario_id, flow_id) "
        "WHERE c.flow_id IS NOT NULL"
    ).fetchall()[0]
    assert members == (0,)
    fraud = con.sql(
        f"SELECT count(*) FROM {tx} WHERE campaign_id IS NOT NULL AND truth_label = 'LEGIT'"
    ).fetchall()[0]
    assert fraud == (0,)
