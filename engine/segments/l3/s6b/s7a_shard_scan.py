"""6B.S7a — one (scenario, shard)'s consumer tables read once for 6B.S7 (design §4.10): every batch of
`transactions` and `events` is checked against the contract as it is decoded (s7_parts.py) and folded by
s7_scan.py; the shard's coverage (its arrivals, inserted flows and retries against its flows) is counted here.
The findings go out as five tables (scan_tables.py), which S7 merges over the shards. A failed contract check
is a finding, not a stop: S7 turns it into a failed check of the bundle."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pyarrow.parquet as pq

from engine.core.contracts import dictionary
from engine.core.errors import EngineError
from engine.core.progress import ProgressMeter
from engine.core.state import StateContext
from engine.segments.l2.s5b.batches import part_rows
from engine.segments.l3.s6b.s7_parts import CheckedParts
from engine.segments.l3.s6b.s7_scan import ShardScan, scan_events, scan_transactions
from engine.segments.l3.s6b.scan_tables import ShardFindings, to_tables


def checked_parts(ctx: StateContext, dataset: str, scenario: str, shard: int) -> CheckedParts:
    ref = dictionary()[dataset]["schema"]
    return CheckedParts(ctx.part_files(dataset, scenario=scenario, shard=shard), ref, ctx.state)


def arrivals_of(ctx: StateContext, scenario: str, shard: int) -> int:
    """5B's arrival rows of one partition, from the sealed parts' Parquet footers."""
    return sum(
        pq.read_metadata(p).num_rows
        for p in ctx.sealed_parts("arrival_events", scenario=scenario, shard=shard)
    )


def metered(frames: Iterator[pl.DataFrame], meter: ProgressMeter) -> Iterator[pl.DataFrame]:
    for frame in frames:
        yield frame
        meter.advance(frame.height)


def verdict(parts: CheckedParts) -> EngineError | None:
    try:
        parts.verdict()
    except EngineError as err:
        return err
    return None


def scan_shard(ctx: StateContext, scenario: str, shard: int) -> ShardFindings:
    """The shard's scan, its coverage counts and both tables' contract verdicts."""
    scale = dict(ctx.policy("6B/channels.yaml").currency_price_scale)
    inserted = ctx.read("inserted_flows", scenario=scenario)
    reissues = ctx.read("card_reissues", scenario=scenario)
    scan = ShardScan()
    transactions = checked_parts(ctx, "transactions", scenario, shard)
    meter = ctx.progress_meter(part_rows(transactions.paths), "flows")
    scan_transactions(metered(transactions.frames(), meter), shard, ctx.shards, scale, reissues, scan)
    meter.close()
    event_parts = checked_parts(ctx, "events", scenario, shard)
    events = scan_events(event_parts.frames(), scan)
    cube = pl.concat(scan.cube) if scan.cube else None
    sums = {c: int(cube[c].sum()) for c in ("cleared", "reversals", "refunds")} if cube is not None else {}
    expected_events = {
        "AUTH_REQUEST": scan.rows,
        "AUTH_RESPONSE": scan.rows,
        "CLEARING": sums.get("cleared", 0),
        "REVERSAL": sums.get("reversals", 0),
        "REFUND": sums.get("refunds", 0),
    }
    arrivals = arrivals_of(ctx, scenario, shard)
    planted = int((inserted["shard"] == shard).sum()) if inserted.height else 0
    retries = scan.origin_counts.get("RETRY", 0)
    coverage = {
        "arrivals": arrivals,
        "inserted": planted,
        "flows": scan.rows,
        "short": abs(scan.rows - (arrivals + planted + retries)),
        "event_mismatch": sum(events.get(k, 0) != v for k, v in expected_events.items()),
    }
    return ShardFindings(
        scan, coverage, {"transactions": verdict(transactions), "events": verdict(event_parts)}
    )


def run(ctx: StateContext) -> None:
    assert ctx.scenario is not None and ctx.shard is not None
    found = scan_shard(ctx, ctx.scenario, ctx.shard)
    for dataset, table in to_tables(found).items():  # the sample first: it is the table most likely to refuse
        ctx.publish(dataset, table)
    ctx.facts["flows_scanned"] = found.scan.rows
