"""6B.S2 — baseline flows (layer2_3 §4.5 with amendments 4, 7, 8, 9): each arrival's legitimate plan (amount,
non-fraud outcome, latencies, clearing, reversal, refund, retry and the auth-message fields), aligned row for
row with 5B's arrival_events and 6B.S1's s1_attachments of the shard. The plan is flow_plan.plan_flows, the
pure function 6B.S4 also calls for inserted flows and retries; draws are `6B.flow` ⟨flow_id, k, 0, d⟩
(7 blocks per flow, flow_kernel.py). Both inputs are streamed in step, one bounded batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from engine.core.errors import EngineError
from engine.core.state import StateContext
from engine.segments.l2.s5b.batches import part_rows
from engine.segments.l3.s6b.flow_kernel import PLAN_BLOCKS
from engine.segments.l3.s6b.flow_plan import FlowInputs, plan_flows, record_plan_draws
from engine.segments.l3.s6b.policy import CHANNELS

BATCH_ROWS = 1 << 20
ARRIVAL_COLUMNS = ["arrival_id", "merchant_id", "ts_utc", "utc_offset_s", "legal_country_iso"]
ATTACH_COLUMNS = ["flow_id", "channel", "party_id", "account_id", "instrument_id", "device_id"]
MAX_AMOUNT_MINOR = 10**13  # contracts/6B.yaml $defs/amount


def _batches(paths: list[Path], columns: list[str]) -> Iterator[pl.DataFrame]:
    for path in paths:
        for rb in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=columns):
            yield pl.from_arrow(rb)  # type: ignore[misc]


def zipped(left: Iterator[pl.DataFrame], right: Iterator[pl.DataFrame]) -> Iterator[pl.DataFrame]:
    """Two aligned row streams side by side, in batches cut where either side's batch ends; a stream that
    ends first is a coverage error (raised by the caller from the row counts)."""
    a = b = None
    while True:
        if a is None or a.height == 0:
            a = next(left, None)
        if b is None or b.height == 0:
            b = next(right, None)
        if a is None or b is None:
            return
        n = min(a.height, b.height)
        yield pl.concat([a.slice(0, n), b.slice(0, n)], how="horizontal")
        a, b = a.slice(n), b.slice(n)


def fail(ctx: StateContext, code: str, what: str, where: str) -> EngineError:
    return EngineError(code, what, where=where, fix="rebuild 6B.S1 and 6B.S2 from one world", state=ctx.state)


def check_batch(ctx: StateContext, batch: pl.DataFrame, plan: pl.DataFrame) -> None:
    """Alignment (flow_id = arrival_id) and the §4.5 validation: amounts in range, offsets positive."""
    if not (batch["flow_id"] == batch["arrival_id"]).all():
        raise fail(
            ctx, "E_6B_FLOW_COVERAGE", "s1_attachments is not aligned with arrival_events", "s1_attachments"
        )
    amount = plan["amount_minor"]
    if amount.min() < 0 or amount.max() > MAX_AMOUNT_MINOR:  # type: ignore[operator]
        raise fail(ctx, "E_SCHEMA", "an amount outside [0, 1e13] minor units", "s2_flow_plan")
    offsets = [c for c in plan.columns if c.endswith("_us")]
    if plan.select(pl.min_horizontal(offsets).min()).item() < 1:
        raise fail(ctx, "E_SCHEMA", "an offset ≤ 0 µs", "s2_flow_plan")


class Tally:
    """Row counts and shares for the state report (S7 and progress read them)."""

    def __init__(self) -> None:
        self.sums: dict[str, int] = {}

    def add(self, batch: pl.DataFrame, plan: pl.DataFrame) -> None:
        frame = pl.concat(
            [batch.select(pl.col("channel").cast(pl.String)), plan.drop("flow_id")], how="horizontal"
        )
        by = frame.group_by("channel").agg(
            flows=pl.len(),
            declined=pl.col("nonfraud_decline").is_not_null().sum(),
            zero_amount=(pl.col("amount_minor") == 0).sum(),
            refunds=pl.col("refund").sum(),
            reversals=pl.col("reversal").sum(),
            retries=pl.col("retry").sum(),
            stand_in=pl.col("stand_in").sum(),
            recurring=pl.col("is_recurring").sum(),
            tipped=(pl.col("clearing_adjust_minor") > 0).sum(),
        )
        for row in by.iter_rows(named=True):
            channel = row.pop("channel")
            for name, value in row.items():
                key = f"{name}_{channel.lower()}"
                self.sums[key] = self.sums.get(key, 0) + int(value)

    def facts(self) -> dict[str, int]:
        keys = [f"{n}_{c.lower()}" for n in ("flows", "declined", "zero_amount", "refunds", "reversals",
                "retries", "stand_in", "recurring", "tipped") for c in CHANNELS]  # fmt: skip
        return {k: self.sums.get(k, 0) for k in keys}


def run(ctx: StateContext) -> None:
    assert ctx.scenario is not None and ctx.shard is not None
    inputs = FlowInputs.from_ctx(ctx)
    arrivals = ctx.sealed_parts("arrival_events", scenario=ctx.scenario, shard=ctx.shard)
    attached = ctx.part_files("s1_attachments", scenario=ctx.scenario, shard=ctx.shard)
    total = part_rows(arrivals)
    if part_rows(attached) != total:
        raise fail(
            ctx,
            "E_6B_FLOW_COVERAGE",
            f"s1_attachments has {part_rows(attached)} rows for {total} arrivals",
            "s1_attachments",
        )
    meter = ctx.progress_meter(total, "flows")
    tally = Tally()
    written = 0
    with ctx.stream("s2_flow_plan") as sink:
        for batch in zipped(_batches(arrivals, ARRIVAL_COLUMNS), _batches(attached, ATTACH_COLUMNS)):
            plan = plan_flows(batch, inputs)
            check_batch(ctx, batch, plan)
            record_plan_draws(ctx, plan)
            tally.add(batch, plan)
            sink.write(plan)
            written += plan.height
            meter.advance(plan.height)
    meter.close()
    if written != total:
        raise fail(ctx, "E_6B_FLOW_COVERAGE", f"planned {written} flows for {total} arrivals", "s2_flow_plan")
    ctx.facts["flows"] = written
    ctx.facts.update(tally.facts())
    ctx.facts["flow_blocks_per_flow"] = PLAN_BLOCKS
