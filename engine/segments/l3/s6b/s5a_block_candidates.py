"""6B.S5a — the detections that block a card, one shard at a time (amendment 5; blocks.py).

It runs S5's bank view up to what the bank learns (score, decision, detection, disputes) on the same
`6B.bank` counters ⟨flow_id, k, 0, 0⟩ S5 uses, so its detections are S5's before any block; the draws are
recorded once, by S5, which publishes them. Output: s5_block_candidates, the flows whose detection blocks
their card, for 6B.S5b to resolve across shards.

Only flows that can block a card are scored (`could_block`): a card flow whose truth is not LEGIT, or a
genuine one on an account with a collateral anchor (the bank may take it for that fraud and its holder then
disputes it as fraud). Every other flow can be neither a compromise-subtype detection nor a fraud-coded
dispute. The bank view is row-wise (each value depends on its own row, its draws ⟨flow_id, k⟩ and the run's
world tables), so scoring the subset gives each kept row the value the whole shard gives it; the same law
makes S5's bytes independent of the shard count."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from engine.core.contracts import table_schema
from engine.core.state import StateContext
from engine.segments.l2.s5b.batches import part_rows
from engine.segments.l3.s6b.blocks import candidates
from engine.segments.l3.s6b.s5_bank_events import BATCH_FLOWS, decided, learned, setup


def could_block(anchors: pl.DataFrame) -> pl.Expr:
    """The s4_flows rows that can yield a blocking detection (a superset: `candidates` decides)."""
    anchored = pl.col("account_id").is_in(anchors["account_id"].unique().implode())
    return pl.col("instrument_id").is_not_null() & ((pl.col("truth_label") != "LEGIT") | anchored)


def kept_batches(part: Path, columns: list[str], keep: pl.Expr) -> Iterator[pl.DataFrame]:
    """The kept rows of one s4_flows part in its order, at most BATCH_FLOWS at a time."""
    kept = pl.scan_parquet(part).select(columns).filter(keep).collect()
    for start in range(0, kept.height, BATCH_FLOWS):
        yield kept.slice(start, BATCH_FLOWS)


def run(ctx: StateContext) -> None:
    assert ctx.scenario is not None and ctx.shard is not None
    s = setup(ctx)
    parts = ctx.part_files("s4_flows", scenario=ctx.scenario, shard=ctx.shard)
    columns = list(table_schema("6B.yaml#/tables/s4_flows").columns)[4:]
    keep = could_block(s.world.anchors)
    meter = ctx.progress_meter(part_rows(parts), "flows")
    scored = found = 0
    with ctx.stream("s5_block_candidates") as out:
        for part in parts:
            for batch in kept_batches(part, columns, keep):
                d = decided(batch, s)
                _, got = learned(d, d.view, d.auth, s, ctx.state)
                rows = candidates(d.view, d.auth, got, s.bank.block_reissue)
                out.write(rows)
                scored += batch.height
                found += rows.height
            meter.advance(part_rows([part]))
    meter.close()
    ctx.facts["flows_scored"] = scored
    ctx.facts["block_candidates"] = found
