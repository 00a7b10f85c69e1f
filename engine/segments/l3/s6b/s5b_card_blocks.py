"""6B.S5b — blocked cards and their replacements, per scenario (amendment 5; blocks.py):
every shard's block candidates, each card's first detection, and `6B.block` ⟨instrument_id, 0, 0, 0⟩ for the
block coin and delays. Output: card_reissues, which every 6B.S5 shard applies."""

from __future__ import annotations

import polars as pl

from engine.core.state import StateContext
from engine.segments.l3.s6b.blocks import BLOCK_LANES, card_blocks
from engine.segments.l3.s6b.policy import BankView


def run(ctx: StateContext) -> None:
    assert ctx.scenario is not None
    bank: BankView = ctx.policy("6B/bank_view.yaml")
    found = pl.concat(
        [ctx.read("s5_block_candidates", scenario=ctx.scenario, shard=k) for k in range(ctx.shards)]
    ).drop("seed", "manifest_fingerprint", "scenario_id", "shard", strict=False)
    reissues, ids, u = card_blocks(found, ctx.family_key("block"), bank.block_reissue)
    ctx.record_draws("block", (ids, 0, 0, 0), draws=BLOCK_LANES, blocks=1, value=u[:, 0])
    ctx.publish("card_reissues", reissues)
    ctx.facts.update({"detected_cards": int(ids.size), "blocked_cards": reissues.height})
