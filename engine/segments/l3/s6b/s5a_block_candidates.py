"""6B.S5a — the detections that block a card, one shard at a time (amendment 5; blocks.py).

It runs S5's bank view up to what the bank learns (score, decision, detection, disputes) on the same
`6B.bank` counters ⟨flow_id, k, 0, 0⟩ S5 uses, so its detections are S5's before any block; the draws are
recorded once, by S5, which publishes them. Output: s5_block_candidates, the flows whose detection blocks
their card, for 6B.S5b to resolve across shards."""

from __future__ import annotations

from engine.core.contracts import table_schema
from engine.core.state import StateContext
from engine.segments.l2.s5b.batches import part_rows, unit_batches
from engine.segments.l3.s6b.blocks import candidates
from engine.segments.l3.s6b.s5_bank_events import BATCH_FLOWS, decided, learned, setup


def run(ctx: StateContext) -> None:
    assert ctx.scenario is not None and ctx.shard is not None
    s = setup(ctx)
    parts = ctx.part_files("s4_flows", scenario=ctx.scenario, shard=ctx.shard)
    columns = list(table_schema("6B.yaml#/tables/s4_flows").columns)[4:]
    meter = ctx.progress_meter(part_rows(parts), "flows")
    found = 0
    with ctx.stream("s5_block_candidates") as out:
        for batch in unit_batches(parts, columns, ["merchant_id"], BATCH_FLOWS):
            d = decided(batch, s)
            _, got = learned(d, d.view, d.auth, s, ctx.state)
            rows = candidates(d.view, d.auth, got, s.bank.block_reissue)
            out.write(rows)
            found += rows.height
            meter.advance(batch.height)
    meter.close()
    ctx.facts["block_candidates"] = found
